import { describe, expect, it } from "vitest";
import { TurnPushes } from "./turn-pushes.ts";

class Member {
  readonly frames: Uint8Array[][] = [];
  push(commits: Uint8Array[]): void {
    this.frames.push(commits);
  }
}

const turn = () => new Promise((r) => setImmediate(r));
const commit = (n: number, size = 10) => new Uint8Array(size).fill(n);

describe("TurnPushes", () => {
  it("pushes the uploads of one turn in one frame per member, in order, never a member's own", async () => {
    const [a, b, c, d] = [new Member(), new Member(), new Member(), new Member()];
    const members = [a, b, c, d];
    const pushes = new TurnPushes<Member>(() => members);
    const sent: number[] = [];
    pushes.add("s", a, [commit(1), commit(2)], () => sent.push(1));
    pushes.add("s", b, [commit(3)], () => sent.push(2));
    pushes.add("s", { space: "s" }, [commit(4)]); // stored outside a connection (an appeal)
    expect(c.frames).toEqual([]);
    await turn();
    expect(a.frames).toEqual([[commit(3), commit(4)]]);
    expect(b.frames).toEqual([[commit(1), commit(2), commit(4)]]);
    expect(c.frames).toEqual([[commit(1), commit(2), commit(3), commit(4)]]);
    // Members due the same uploads get the same array: the session encodes it once.
    expect(d.frames[0]).toBe(c.frames[0]);
    expect(sent).toEqual([1, 2]);
  });

  it("pushes to the members of the space when the commits were stored, not to later ones", async () => {
    const [a, b, late] = [new Member(), new Member(), new Member()];
    const members = [a, b];
    const pushes = new TurnPushes<Member>(() => members);
    pushes.add("s", a, [commit(1)]);
    members.push(late);
    pushes.add("s", a, [commit(2)]);
    pushes.flush();
    expect(b.frames).toEqual([[commit(1), commit(2)]]);
    expect(late.frames).toEqual([[commit(2)]]);
    expect(a.frames).toEqual([]);
  });

  it("keeps spaces apart and splits a large turn into several frames, whole uploads each", () => {
    const spaces = new Map([
      ["s", [new Member(), new Member()]],
      ["t", [new Member(), new Member()]],
    ]);
    const pushes = new TurnPushes<Member>((space) => spaces.get(space) ?? []);
    const [s0, s1] = spaces.get("s")!;
    const [t0, t1] = spaces.get("t")!;
    const big = 100 * 1024;
    for (let i = 0; i < 5; i++) pushes.add("s", s0, [commit(i, big)]);
    pushes.add("t", t0, [commit(9)]);
    pushes.flush();
    expect(s1!.frames.map((f) => f.length)).toEqual([2, 2, 1]);
    // Compared as bytes: a deep equality walks 500 KiB element by element, seconds on a loaded machine
    // (it once took this test past its 5 s timeout in CI).
    const same = s1!.frames.flat().map((c, i) => Buffer.from(c).equals(commit(i, big)));
    expect(same).toEqual([true, true, true, true, true]);
    expect(t1!.frames).toEqual([[commit(9)]]);
    expect(t0!.frames).toEqual([]);
  });

  it("gives every receiver of a turn's lone upload the same frame, never its sender", () => {
    const [a, b, c] = [new Member(), new Member(), new Member()];
    const pushes = new TurnPushes<Member>(() => [a, b, c]);
    const sent: number[] = [];
    pushes.add("s", b, [commit(1)], () => sent.push(1));
    pushes.flush();
    expect(a.frames).toEqual([[commit(1)]]);
    expect(c.frames[0]).toBe(a.frames[0]);
    expect(b.frames).toEqual([]);
    expect(sent).toEqual([1]);
  });
});
