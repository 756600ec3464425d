import { describe, expect, it } from "vitest";
import { isRecordId, uuidv7 } from "./ids.ts";

describe("uuidv7", () => {
  it("is a version-7 RFC 9562 UUID carrying the time", () => {
    const id = uuidv7(0x0123456789ab);
    expect(id).toMatch(/^01234567-89ab-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(isRecordId(id)).toBe(true);
  });
  it("sorts in creation order, also within one millisecond, and never repeats", () => {
    const ids = Array.from({ length: 2000 }, (_, i) => uuidv7(1_700_000_000_000 + Math.floor(i / 500)));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
