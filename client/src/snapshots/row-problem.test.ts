import { describe, expect, it } from "vitest";
import { rowProblem } from "./snapshot-io.ts";

describe("rowProblem: a snapshot's rows and documents are checked key by key", () => {
  it("accepts a row's id and refuses a reserved key after it", () => {
    expect(rowProblem({ id: "r1", name: "Ada" }, false)).toBeNull();
    // The id came first and used to end the check, letting the `$` key through.
    expect(rowProblem({ id: "r1", $escrow: { x: 1 } }, false)).toBe('the reserved field "$escrow"');
    expect(rowProblem({ name: "Ada", id: "r1", $forged: 1 }, false)).toBe('the reserved field "$forged"');
    expect(rowProblem({ $deleted: true }, false)).toBe('the reserved field "$deleted"');
  });

  it("refuses an id in a document, allows its tombstone, and refuses other reserved keys", () => {
    expect(rowProblem({ name: "Ada" }, true)).toBeNull();
    expect(rowProblem({ $deleted: true }, true)).toBeNull();
    expect(rowProblem({ id: "r1" }, true)).toBe('the reserved field "id"');
    expect(rowProblem({ name: "Ada", $deleted: true, $x: 1 }, true)).toBe('the reserved field "$x"');
  });

  it("still checks the content once the keys pass", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200; i++) deep = [deep];
    expect(rowProblem({ id: "r1", tags: deep }, false)).toMatch(/nest/);
  });
});
