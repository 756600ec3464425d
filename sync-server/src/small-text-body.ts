import type { Context } from "hono";

/**
 * The request body as text, or `undefined` once it exceeds `maxBytes`: a declared length is trusted
 * for an early answer, and a chunked body is read only until it goes over. For the relay's small
 * `text/plain` endpoints (the access probe, the invitation log), whose bodies are a few proofs.
 *
 * @example
 * const body = await readSmallText(c, 640); // undefined: answer 413
 */
export async function readSmallText(c: Context, maxBytes: number): Promise<string | undefined> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > maxBytes) return undefined;
  const stream = c.req.raw.body;
  if (!stream) return "";
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}
