// cbor-x loads cbor-extract in a try/catch and falls back to JavaScript when it is missing.
throw new Error("cbor-extract is disabled in this repository (see package.json)");
