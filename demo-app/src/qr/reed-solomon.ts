/**
 * Reed-Solomon error correction over GF(2^8) with the QR code's field polynomial x^8+x^4+x^3+x^2+1
 * (0x11D), as ISO/IEC 18004 section 7.5.2 defines it: the error correction codewords of a block are the
 * remainder of the data polynomial divided by the generator (x - α^0)(x - α^1)...(x - α^(n-1)).
 */

/** Product of two field elements (carry-less multiplication reduced by 0x11D). */
function multiply(x: number, y: number): number {
  let z = 0;
  for (let i = 7; i >= 0; i--) {
    z = (z << 1) ^ ((z >>> 7) * 0x11d);
    z ^= ((y >>> i) & 1) * x;
  }
  return z & 0xff;
}

/** The generator polynomial of degree `degree`, highest coefficient (always 1) left out. */
function generator(degree: number): number[] {
  const poly = new Array<number>(degree).fill(0);
  poly[degree - 1] = 1;
  let root = 1;
  for (let i = 0; i < degree; i++) {
    // Multiply by (x - root); in this field subtraction is XOR.
    for (let j = 0; j < degree; j++) {
      poly[j] = multiply(poly[j]!, root);
      if (j + 1 < degree) poly[j] = poly[j]! ^ poly[j + 1]!;
    }
    root = multiply(root, 0x02);
  }
  return poly;
}

/** The `degree` error correction codewords of one block of data codewords. */
export function reedSolomon(data: readonly number[], degree: number): number[] {
  const divisor = generator(degree);
  const rest = new Array<number>(degree).fill(0);
  for (const byte of data) {
    const factor = byte ^ rest.shift()!;
    rest.push(0);
    for (let i = 0; i < degree; i++) rest[i] = rest[i]! ^ multiply(divisor[i]!, factor);
  }
  return rest;
}
