// Types for chromium.mjs, so that TypeScript files (the Playwright config) can import it under strict mode.
export declare const CHROMIUM_INSTALL_COMMAND: string;
export declare const CHROMIUM_ARGS: readonly string[];
export declare function chromiumExecutable(): string | undefined;
