/**
 * A structured log line. Fields carry only space ids, opaque device ids, counts, codes and reasons:
 * never a token, a URL query, a header or commit bytes.
 *
 * @example
 * const log: RelayLog = (event, fields) => process.stderr.write(JSON.stringify({ event, ...fields }) + "\n");
 */
export type RelayLog = (
  event: string,
  fields?: Record<string, string | number | boolean | undefined>,
) => void;

/**
 * A logger that drops everything (the default for `createApp`, so tests stay quiet).
 *
 * @example
 * createApp({ store, log: silentLog });
 */
export const silentLog: RelayLog = () => {};

/**
 * A logger writing one JSON object per line to stderr, keeping stdout for the CLI's address line.
 *
 * @example
 * createApp({ store, log: jsonLinesLog });
 */
export const jsonLinesLog: RelayLog = (event, fields) => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), event, ...fields }) + "\n");
};
