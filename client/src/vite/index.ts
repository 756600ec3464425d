/**
 * The Vite plugin of @shoal/client: the one line a Vite app adds to its config.
 *
 * @example
 * import { shoal } from "@shoal/client/vite";
 * export default defineConfig({ plugins: [react(), shoal()] });
 *
 * @module @shoal/client/vite
 */
export { shoal } from "./shoal.ts";
