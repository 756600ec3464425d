import { reedSolomon } from "./reed-solomon.ts";

/**
 * A QR code (ISO/IEC 18004) of some text, as a square of modules (true = dark), written for the Staff
 * page's invitation links so a tablet's camera can take one without anyone typing it. Byte mode (UTF-8),
 * error correction level M (about 15% of the code may be damaged), the smallest version that fits.
 * Nothing here is tuned for speed: a link is encoded once when it is made.
 *
 * @example
 * const modules = qrCode("https://clinic.example/#invite=...");
 * modules.length; // 21, 25, ... (4 * version + 17)
 */
export function qrCode(text: string): boolean[][] {
  const bytes = [...new TextEncoder().encode(text)];
  const version = smallestVersion(bytes.length);
  const grid = new Grid(version);
  grid.drawFunctionPatterns();
  grid.placeData(codewords(bytes, version));
  let best = 0;
  let bestPenalty = Infinity;
  for (let mask = 0; mask < 8; mask++) {
    grid.applyMask(mask);
    grid.drawFormat(mask);
    const p = grid.penalty();
    if (p < bestPenalty) [best, bestPenalty] = [mask, p];
    grid.applyMask(mask); // XOR again undoes it
  }
  grid.applyMask(best);
  grid.drawFormat(best);
  return grid.modules;
}

/** Error correction codewords per block at level M, by version (index 0 unused). Table 9 of the standard. */
const EC_PER_BLOCK = [
  0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28,
  28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28,
];
/** Error correction blocks at level M, by version (index 0 unused). Table 9 of the standard. */
const BLOCKS = [
  0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29,
  31, 33, 35, 37, 38, 40, 43, 45, 47, 49,
];
/** Format information's two bits for level M (section 7.9.1: L=01, M=00, Q=11, H=10). */
const LEVEL_M_BITS = 0;

/** Modules left for data and error correction once every function pattern is drawn, in codewords. */
function rawCodewords(version: number): number {
  let modules = (16 * version + 128) * version + 64;
  if (version >= 2) {
    const align = Math.floor(version / 7) + 2;
    modules -= (25 * align - 10) * align - 55;
    if (version >= 7) modules -= 36;
  }
  return Math.floor(modules / 8);
}

function dataCodewords(version: number): number {
  return rawCodewords(version) - EC_PER_BLOCK[version]! * BLOCKS[version]!;
}

/** The character count field is 8 bits wide in byte mode up to version 9, 16 bits after. */
function countBits(version: number): number {
  return version <= 9 ? 8 : 16;
}

function smallestVersion(length: number): number {
  for (let v = 1; v <= 40; v++) if (4 + countBits(v) + 8 * length <= 8 * dataCodewords(v)) return v;
  throw new RangeError(`${length} bytes do not fit in a QR code at level M.`);
}

/** The data bit stream, padded, split into blocks with their error correction, interleaved (7.6). */
function codewords(bytes: readonly number[], version: number): number[] {
  const capacity = dataCodewords(version);
  const bits: number[] = [];
  const push = (value: number, width: number) => {
    for (let i = width - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  };
  push(0b0100, 4);
  push(bytes.length, countBits(version));
  for (const b of bytes) push(b, 8);
  push(0, Math.min(4, capacity * 8 - bits.length));
  push(0, (8 - (bits.length % 8)) % 8);
  const data: number[] = [];
  for (let i = 0; i < bits.length; i += 8) data.push(bits.slice(i, i + 8).reduce((a, b) => (a << 1) | b, 0));
  for (let pad = 0xec; data.length < capacity; pad ^= 0xec ^ 0x11) data.push(pad);

  const blocks = BLOCKS[version]!;
  const ecLength = EC_PER_BLOCK[version]!;
  const raw = rawCodewords(version);
  const shortBlocks = blocks - (raw % blocks);
  const shortData = Math.floor(raw / blocks) - ecLength;
  const dataBlocks: number[][] = [];
  const ecBlocks: number[][] = [];
  for (let i = 0, at = 0; i < blocks; i++) {
    const length = shortData + (i < shortBlocks ? 0 : 1);
    const block = data.slice(at, at + length);
    at += length;
    dataBlocks.push(block);
    ecBlocks.push(reedSolomon(block, ecLength));
  }
  const out: number[] = [];
  for (let i = 0; i <= shortData; i++) for (const b of dataBlocks) if (i < b.length) out.push(b[i]!);
  for (let i = 0; i < ecLength; i++) for (const b of ecBlocks) out.push(b[i]!);
  return out;
}

/** Centres of the alignment patterns on each axis (Annex E), evenly spaced from the far edge. */
function alignmentCentres(version: number): number[] {
  if (version === 1) return [];
  const count = Math.floor(version / 7) + 2;
  const size = version * 4 + 17;
  const step = version === 32 ? 26 : Math.ceil((version * 4 + 4) / (count * 2 - 2)) * 2;
  const centres = [6];
  for (let pos = size - 7; centres.length < count; pos -= step) centres.splice(1, 0, pos);
  return centres;
}

/** The module square while it is built: which modules are function patterns, and their colours. */
class Grid {
  readonly size: number;
  readonly modules: boolean[][];
  readonly #fixed: boolean[][];

  constructor(readonly version: number) {
    this.size = version * 4 + 17;
    this.modules = Array.from({ length: this.size }, () => new Array<boolean>(this.size).fill(false));
    this.#fixed = Array.from({ length: this.size }, () => new Array<boolean>(this.size).fill(false));
  }

  #set(x: number, y: number, dark: boolean): void {
    this.modules[y]![x] = dark;
    this.#fixed[y]![x] = true;
  }

  drawFunctionPatterns(): void {
    const last = this.size - 1;
    for (let i = 0; i < this.size; i++) {
      this.#set(6, i, i % 2 === 0);
      this.#set(i, 6, i % 2 === 0);
    }
    for (const [cx, cy] of [
      [3, 3],
      [last - 3, 3],
      [3, last - 3],
    ] as const)
      this.#finder(cx, cy);
    const centres = alignmentCentres(this.version);
    for (const cy of centres)
      for (const cx of centres) {
        // The three corners with finder patterns get none.
        const corner =
          (cx === 6 && cy === 6) ||
          (cx === 6 && cy === centres.at(-1)) ||
          (cy === 6 && cx === centres.at(-1));
        if (!corner) this.#alignment(cx, cy);
      }
    this.drawFormat(0); // reserves the format modules; drawn for real once the mask is chosen
    this.#drawVersion();
  }

  #finder(cx: number, cy: number): void {
    for (let dy = -4; dy <= 4; dy++)
      for (let dx = -4; dx <= 4; dx++) {
        const x = cx + dx;
        const y = cy + dy;
        if (x < 0 || y < 0 || x >= this.size || y >= this.size) continue;
        const ring = Math.max(Math.abs(dx), Math.abs(dy));
        // Rings 0-1 dark centre, 2 light, 3 dark border, 4 the light separator.
        this.#set(x, y, ring !== 2 && ring !== 4);
      }
  }

  #alignment(cx: number, cy: number): void {
    for (let dy = -2; dy <= 2; dy++)
      for (let dx = -2; dx <= 2; dx++)
        this.#set(cx + dx, cy + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
  }

  /** Format information (7.9): level and mask, BCH(15,5) protected, XOR 0x5412, in two copies. */
  drawFormat(mask: number): void {
    const data = (LEVEL_M_BITS << 3) | mask;
    let rest = data;
    for (let i = 0; i < 10; i++) rest = (rest << 1) ^ ((rest >>> 9) * 0x537);
    const bits = ((data << 10) | rest) ^ 0x5412;
    const bit = (i: number) => ((bits >>> i) & 1) === 1;
    for (let i = 0; i <= 5; i++) this.#set(8, i, bit(i));
    this.#set(8, 7, bit(6));
    this.#set(8, 8, bit(7));
    this.#set(7, 8, bit(8));
    for (let i = 9; i < 15; i++) this.#set(14 - i, 8, bit(i));
    for (let i = 0; i < 8; i++) this.#set(this.size - 1 - i, 8, bit(i));
    for (let i = 8; i < 15; i++) this.#set(8, this.size - 15 + i, bit(i));
    this.#set(8, this.size - 8, true); // the dark module, always dark
  }

  /** Version information (7.10) from version 7 on: BCH(18,6), next to two finder patterns. */
  #drawVersion(): void {
    if (this.version < 7) return;
    let rest = this.version;
    for (let i = 0; i < 12; i++) rest = (rest << 1) ^ ((rest >>> 11) * 0x1f25);
    const bits = (this.version << 12) | rest;
    for (let i = 0; i < 18; i++) {
      const dark = ((bits >>> i) & 1) === 1;
      const a = this.size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      this.#set(a, b, dark);
      this.#set(b, a, dark);
    }
  }

  /** Codewords into the free modules, in two-column strips from the right, up then down (7.7.3). */
  placeData(data: readonly number[]): void {
    let i = 0;
    for (let right = this.size - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5; // the vertical timing pattern is skipped
      for (let vert = 0; vert < this.size; vert++)
        for (let j = 0; j < 2; j++) {
          const x = right - j;
          const upward = ((right + 1) & 2) === 0;
          const y = upward ? this.size - 1 - vert : vert;
          if (this.#fixed[y]![x]) continue;
          if (i < data.length * 8) this.modules[y]![x] = ((data[i >>> 3]! >>> (7 - (i & 7))) & 1) === 1;
          i++;
        }
    }
  }

  /** XORs a data mask pattern (7.8.2) over the non-function modules; applying it twice undoes it. */
  applyMask(mask: number): void {
    for (let y = 0; y < this.size; y++)
      for (let x = 0; x < this.size; x++) {
        if (this.#fixed[y]![x]) continue;
        if (maskHits(mask, x, y)) this.modules[y]![x] = !this.modules[y]![x];
      }
  }

  /**
   * A lower score reads more reliably (7.8.3): long runs of one colour, 2x2 blocks, and imbalance
   * between dark and light. The finder-lookalike rule is left out: any mask decodes, this only picks a
   * good one.
   */
  penalty(): number {
    let score = 0;
    const at = (x: number, y: number) => this.modules[y]![x]!;
    for (let a = 0; a < this.size; a++)
      for (const line of [(i: number) => at(i, a), (i: number) => at(a, i)]) {
        let run = 1;
        for (let i = 1; i <= this.size; i++) {
          if (i < this.size && line(i) === line(i - 1)) run++;
          else {
            if (run >= 5) score += run - 2;
            run = 1;
          }
        }
      }
    let dark = 0;
    for (let y = 0; y < this.size; y++)
      for (let x = 0; x < this.size; x++) {
        if (at(x, y)) dark++;
        if (x + 1 < this.size && y + 1 < this.size) {
          const c = at(x, y);
          if (at(x + 1, y) === c && at(x, y + 1) === c && at(x + 1, y + 1) === c) score += 3;
        }
      }
    const total = this.size * this.size;
    score += Math.floor(Math.abs(dark * 20 - total * 10) / total) * 10;
    return score;
  }
}

/** Whether mask pattern `mask` inverts the module in column x, row y (Table 10 of the standard). */
function maskHits(mask: number, x: number, y: number): boolean {
  switch (mask) {
    case 0:
      return (x + y) % 2 === 0;
    case 1:
      return y % 2 === 0;
    case 2:
      return x % 3 === 0;
    case 3:
      return (x + y) % 3 === 0;
    case 4:
      return (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0;
    case 5:
      return ((x * y) % 2) + ((x * y) % 3) === 0;
    case 6:
      return (((x * y) % 2) + ((x * y) % 3)) % 2 === 0;
    default:
      return (((x + y) % 2) + ((x * y) % 3)) % 2 === 0;
  }
}
