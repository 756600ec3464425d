import type { MembershipOp, Role } from "../../src/members/membership-op.ts";
import type { MembershipState } from "../../src/members/resolve-membership.ts";
import type { Observable } from "../../src/live/observable.ts";
import type { Replica } from "../../src/replica/replica.ts";
import type { MemberRow } from "../../src/replica/stored-rows.ts";
import { joinByInvitation } from "../../src/spaces/join-by-invitation.ts";
import {
  inviteMember,
  removeMember,
  revokeInvitation,
  setMemberRole,
} from "../../src/spaces/manage-members.ts";
import { readMembership } from "../../src/spaces/membership-log.ts";
import type { SimulatedNetwork } from "../../src/testing/simulated-network.ts";
import type { seededRandom } from "../../src/testing/seeded-random.ts";
import type { SpaceId } from "../../src/types.ts";

/** The part of a fuzz replica the membership machinery uses (the driver's `Replica`). */
export interface MemberReplica {
  name: string;
  db: {
    readonly deviceId: string;
    readonly replica: Replica;
    live<T>(querier: () => Promise<T> | T): Observable<T>;
  };
}

/** What the membership mode did in one scenario. */
export interface MembershipStats {
  /**
   * Membership operations attempted (invitations, redemptions, roles, removals, revocations; a removal
   * counts 2, with its rotation), those a stale view refused (`refusedOps`) included.
   */
  operations: number;
  invitations: number;
  redemptions: number;
  roleChanges: number;
  removals: number;
  /** Steps where two admins, both partitioned, removed each other. */
  mutualRemovals: number;
  revocations: number;
  /** Single-use links redeemed by two fresh replicas at once (exactly one may become a member). */
  doubleRedemptions: number;
  /** Local writes refused with `NotPermitted` (a reader, a removed device, a non-member). */
  refusedWrites: number;
  /** Membership operations an admin's own (possibly stale) view refused (`NotPermitted`, `NotFound`). */
  refusedOps: number;
  /** Joins refused at redemption (a revoked or used link, as the log already said). */
  refusedJoins: number;
}

export const emptyMembershipStats = (): MembershipStats => ({
  operations: 0,
  invitations: 0,
  redemptions: 0,
  roleChanges: 0,
  removals: 0,
  mutualRemovals: 0,
  revocations: 0,
  doubleRedemptions: 0,
  refusedWrites: 0,
  refusedOps: 0,
  refusedJoins: 0,
});

/** Errors a membership-aware honest client expects: the log said no (the driver counts them). */
export function isExpectedRefusal(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === "NotPermitted" || code === "AccessDenied" || code === "NotFound";
}

/** What runs on a fresh replica's database, named `name`, before it syncs. */
type Join = (db: MemberReplica["db"], name: string) => Promise<void>;

interface Hooks<R extends MemberReplica> {
  rnd: ReturnType<typeof seededRandom>;
  space: SpaceId;
  net: SimulatedNetwork;
  replicas: () => R[];
  /**
   * Opens fresh replicas: each runs `join` on its new database before it starts syncing, so two of them
   * can redeem one link before either has uploaded anything (a true concurrent double redemption).
   */
  openFresh: (joins: Join[]) => Promise<R[]>;
  partitioned: () => void;
}

/**
 * The membership operations of a fuzz scenario (issue 13): replica 0 creates the space and starts its
 * membership; every other replica joins by a member invitation (its role by seed); during the run,
 * seeded steps change roles, remove people or single devices (the target possibly partitioned, still
 * writing), have two partitioned admins remove each other, revoke invitations (sometimes while one is
 * being redeemed), have two fresh replicas redeem one single-use link, and link a second device of a
 * person. Everything goes through the same client code an app uses; what the log then refuses is
 * counted, never a failure. `membership-invariant.ts` checks the outcome.
 */
export class MembershipScenario<R extends MemberReplica> {
  readonly stats = emptyMembershipStats();
  readonly #h: Hooks<R>;
  /** Replica names whose `join` threw (a revoked or used link): never members, left out of checks. */
  readonly outsiders = new Set<string>();
  /** What it did, in order (printed with a divergence, to read a failing seed). */
  readonly trail: string[] = [];
  /** Link -> its invitation key (for a revocation). */
  readonly #links = new Map<string, string>();

  constructor(hooks: Hooks<R>) {
    this.#h = hooks;
  }

  /** Replica 0 (the creator) starts the membership with its first invitation, kept for `join`. */
  async start(first: R): Promise<string> {
    return this.#invite(first, this.#role());
  }

  #role(): Role {
    return this.#h.rnd.pick<Role>(["writer", "writer", "writer", "reader", "admin"]);
  }

  async #invite(admin: R, role: Role, uses = 1, person?: string): Promise<string> {
    const { link, invitation } = await inviteMember(admin.db.replica, this.#h.space, {
      role,
      uses,
      me: "Admin",
      ...(person !== undefined && { person }),
    });
    this.stats.invitations++;
    this.stats.operations++;
    this.#links.set(link, invitation);
    return link;
  }

  /**
   * A `join` for the driver's `open`: redeems `link` with the log as `from`'s replica holds it (as a
   * peer answering, so the relay need not have the invitation yet; the relay still checks the
   * invitation when the joiner connects). A refusal the log already shows is counted, not thrown.
   */
  joiner(link: string, from: R): Join {
    return async (db, name) => {
      try {
        await joinByInvitation(db.replica, link, () => logOf(from.db), name);
        this.stats.redemptions++;
        this.stats.operations++;
        this.trail.push(`${name} redeems an invitation of ${from.name}`);
      } catch (e) {
        // Refused by the log it read: used, expired, revoked (`AccessDenied`), or an invitation the
        // inviter's own log no longer counts, its author demoted or removed meanwhile (soak seed 40161).
        const code = (e as { code?: string }).code;
        if (code !== "AccessDenied" && code !== "InvalidInvitation") throw e;
        this.stats.refusedJoins++;
        this.outsiders.add(name);
        this.trail.push(`${name}'s redemption is refused: ${(e as Error).message}`);
      }
    };
  }

  /** The current state as a replica's own log says. */
  async #state(r: R): Promise<MembershipState | undefined> {
    return readMembership(r.db.replica.dexie, this.#h.space);
  }

  async #admins(): Promise<R[]> {
    const out: R[] = [];
    for (const r of this.#h.replicas()) {
      const s = await this.#state(r);
      const person = s?.deviceOwner.get(r.db.deviceId);
      if (person !== undefined && s!.members.get(person)?.role === "admin") out.push(r);
    }
    return out;
  }

  /** A replica that is a member by its own view (someone to remove, demote, or link a device of). */
  async #members(): Promise<{ r: R; person: string }[]> {
    const out: { r: R; person: string }[] = [];
    for (const r of this.#h.replicas()) {
      const person = (await this.#state(r))?.deviceOwner.get(r.db.deviceId);
      if (person !== undefined) out.push({ r, person });
    }
    return out;
  }

  /** A late join by a fresh invitation from some admin. Returns the new replicas (one, or none). */
  async lateJoin(): Promise<R[]> {
    const admin = this.#h.rnd.pick(await this.#admins());
    if (!admin) return [];
    const link = await this.#invite(admin, this.#role());
    return this.#h.openFresh([this.joiner(link, admin)]);
  }

  /**
   * One seeded membership step. Operations a stale view makes impossible (the admin was demoted or
   * removed meanwhile, the target is unknown to it) throw `NotPermitted` or `NotFound`: counted.
   * Returns the replicas it opened.
   */
  async step(replica0: R): Promise<R[]> {
    const { rnd, space, net } = this.#h;
    const admins = await this.#admins();
    const admin = rnd.pick(admins);
    if (!admin) return [];
    const others = (await this.#members()).filter((m) => m.r !== replica0);
    const kind = rnd.int(8);
    try {
      if (kind <= 1 && others.length > 0) {
        // Writer <-> reader, or a second admin. The creator's role never changes (it stays the
        // admin every scenario can rely on), so it is never the target.
        const target = rnd.pick(others);
        const role = rnd.pick<Role>(["writer", "reader", "admin"]);
        this.stats.operations++;
        this.trail.push(`${admin.name} makes ${target.r.name} ${role}`);
        await setMemberRole(admin.db.replica, space, target.person, role);
        this.stats.roleChanges++;
      } else if (kind <= 3 && others.length > 0) {
        // A removal of a person, or of one device, with the target often cut off and still writing.
        const target = rnd.pick(others.filter((m) => m.r !== admin));
        if (!target) return [];
        if (rnd.next() < 0.5 && !net.isPartitioned(target.r.name)) {
          net.partition(target.r.name);
          this.#h.partitioned();
        }
        this.stats.operations += 2; // the removal and its rotation
        const what = rnd.next() < 0.5 ? { person: target.person } : { device: target.r.db.deviceId };
        this.trail.push(
          `${admin.name} removes ${target.r.name} (${"person" in what ? "person" : "device"}${net.isPartitioned(target.r.name) ? ", partitioned" : ""})`,
        );
        await removeMember(admin.db.replica, space, what);
        this.stats.removals++;
      } else if (kind === 4) {
        // Two admins, both partitioned, remove each other: the more senior stays (PROTOCOL.md 10).
        const pair = rnd.shuffle(admins).slice(0, 2);
        if (pair.length < 2) return [];
        const [a, b] = pair as [R, R];
        for (const r of pair)
          if (!net.isPartitioned(r.name)) {
            net.partition(r.name);
            this.#h.partitioned();
          }
        const personOf = async (r: R, of: R) => (await this.#state(r))?.deviceOwner.get(of.db.deviceId);
        const [pb, pa] = [await personOf(a, b), await personOf(b, a)];
        // Both must know each other: otherwise only one removal happens, and it may remove the creator
        // (one admin's view lacks the other's redemption), whom every scenario relies on (seed 60132).
        if (pb === undefined || pa === undefined) return [];
        this.stats.mutualRemovals++;
        // The creator's removal goes first: if its own view refuses it, the other one does not happen.
        const removals = (
          [
            [a, pb],
            [b, pa],
          ] as const
        ).toSorted(([x]) => (x === replica0 ? -1 : 0));
        for (const [by, person] of removals) {
          try {
            this.stats.operations += 2;
            this.trail.push(`${by.name} removes the other admin (${a.name} <-> ${b.name}, both partitioned)`);
            await removeMember(by.db.replica, space, { person });
            this.stats.removals++;
          } catch (e) {
            if (!isExpectedRefusal(e)) throw e;
            this.stats.refusedOps++;
            this.trail.push(`  refused: ${(e as Error).message}`);
            if (by === replica0) break;
          }
        }
      } else if (kind === 5) {
        // An invitation revoked; half the time while a fresh replica redeems it (the admin cut off,
        // so the two are concurrent: the revocation cancels the redemption everywhere).
        if (this.#h.replicas().length >= 8) return [];
        const link = await this.#invite(admin, "writer");
        let opened: R[] = [];
        const racing = rnd.next() < 0.5;
        if (racing && !net.isPartitioned(admin.name)) {
          net.partition(admin.name);
          this.#h.partitioned();
        }
        if (racing) opened = await this.#h.openFresh([this.joiner(link, admin)]);
        this.stats.operations++;
        this.trail.push(`${admin.name} revokes an invitation${racing ? " while it is redeemed" : ""}`);
        await revokeInvitation(admin.db.replica, space, this.#links.get(link)!);
        this.stats.revocations++;
        // A later redemption of the revoked link is refused by the log the joiner reads.
        if (!racing) opened = await this.#h.openFresh([this.joiner(link, admin)]);
        return opened;
      } else if (kind === 6) {
        // One single-use link, two fresh devices redeeming it before either has synced.
        if (this.#h.replicas().length >= 7) return [];
        const link = await this.#invite(admin, this.#role());
        this.stats.doubleRedemptions++;
        this.trail.push(`two fresh replicas redeem one single-use link of ${admin.name}`);
        return await this.#h.openFresh([this.joiner(link, admin), this.joiner(link, admin)]);
      } else if (others.length > 0 && this.#h.replicas().length < 8) {
        // A second device of a member, linked by that member's own device.
        const owner = rnd.pick(others);
        const link = await this.#invite(owner.r, "writer", 1, owner.person);
        this.trail.push(`${owner.r.name} links a second device`);
        return await this.#h.openFresh([this.joiner(link, owner.r)]);
      }
    } catch (e) {
      if (!isExpectedRefusal(e)) throw e;
      this.stats.refusedOps++;
      this.trail.push(`  refused: ${(e as Error).message}`);
    }
    return [];
  }
}

/** A replica's membership log, as a peer would hand it to a joining device. */
export async function logOf(db: MemberReplica["db"]): Promise<MembershipOp[]> {
  return (await db.replica.dexie.table<MemberRow>("_members").toArray()).map((r) => JSON.parse(r.op));
}
