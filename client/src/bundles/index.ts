/**
 * @shoal/client/bundles: sync by file, with no network. `db.exportBundle` and `db.importBundle` load
 * this code on first use; these are the same operations as functions, and the file format's reader for
 * tools that inspect a bundle without a database.
 *
 * @example
 * import { exportBundle, importBundle } from "@shoal/client/bundles";
 * const bytes = await exportBundle(db, { space, since: vectorOfTheOtherDevice });
 * const report = await importBundle(otherDb, bytes);
 */
export { exportBundleOf as exportBundle, importBundleInto as importBundle } from "./bundle-io.ts";
export type { BundleDatabase, BundleImportReport, ExportBundleOptions } from "./bundle-io.ts";
export { decodeBundle, BUNDLE_MAGIC, BUNDLE_FORMAT_VERSION } from "./bundle.ts";
export type { BundleRange, DecodedBundle } from "./bundle.ts";
