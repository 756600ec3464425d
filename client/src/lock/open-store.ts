import type { Dexie } from "dexie";
import { Locked } from "../errors.ts";
import type { CollectionSpec } from "../replica/collection-spec.ts";
import { openDexie } from "../replica/open-dexie.ts";
import type { AtRestLock, LockOptions } from "./at-rest-lock.ts";

/**
 * Opens the Dexie database of `openDatabase`: with `lock`, through the at-rest middleware and unlocked
 * with the passphrase (the lock's code, and its cipher, are loaded only then: an app without a lock
 * never downloads them); without, refusing a database that has a lock (`Locked`), whose values it
 * could not read.
 *
 * @example
 * const { dexie, atRest } = await openStore("clinic", specs, { passphrase: pin });
 */
export async function openStore(
  name: string,
  specs: readonly CollectionSpec[],
  lock: LockOptions | undefined,
): Promise<{ dexie: Dexie; atRest: AtRestLock | undefined }> {
  const atRest = lock && new (await import("./at-rest-lock.ts")).AtRestLock(lock);
  const dexie = await openDexie(name, specs, atRest?.middleware);
  try {
    if (atRest) await atRest.open(dexie);
    // A locked database keeps its lock record (`_meta` "lock") in clear, and nothing else.
    else if (await dexie.table("_meta").get("lock"))
      throw new Locked("This database has an at-rest lock: open it with lock: { passphrase }.");
  } catch (e) {
    dexie.close();
    throw e;
  }
  return { dexie, atRest };
}
