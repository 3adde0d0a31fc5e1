// Just enough PNG for screenshot tests: decode 8-bit RGB / RGBA non-interlaced images (what
// Chromium writes), encode RGBA (for the diff image of a failure), and compare two images.
import { deflateSync, inflateSync } from 'node:zlib';

export interface Image {
  width: number;
  height: number;
  /** RGBA, 4 bytes a pixel, rows top to bottom. */
  data: Uint8Array;
}

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

export function decodePng(buf: Uint8Array): Image {
  if (!SIGNATURE.every((b, i) => buf[i] === b)) throw new Error('not a PNG');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let colorType = 0;
  const idat: Uint8Array[] = [];
  while (pos < buf.length) {
    const len = view.getUint32(pos);
    const type = String.fromCharCode(...buf.subarray(pos + 4, pos + 8));
    const body = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = view.getUint32(pos + 8);
      height = view.getUint32(pos + 12);
      const depth = body[8]!;
      colorType = body[9]!;
      if (depth !== 8 || (colorType !== 2 && colorType !== 6) || body[12] !== 0) {
        throw new Error(`unsupported PNG: depth ${depth}, colour type ${colorType}, interlace ${body[12]}`);
      }
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    pos += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const bpp = colorType === 6 ? 4 : 3;
  const stride = width * bpp;
  const out = new Uint8Array(width * height * 4);
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = Uint8Array.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? line[x - bpp]! : 0;
      const b = prev[x]!;
      const c = x >= bpp ? prev[x - bpp]! : 0;
      let v = line[x]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`bad PNG filter ${filter}`);
      line[x] = v & 255;
    }
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      out[o] = line[x * bpp]!;
      out[o + 1] = line[x * bpp + 1]!;
      out[o + 2] = line[x * bpp + 2]!;
      out[o + 3] = bpp === 4 ? line[x * bpp + 3]! : 255;
    }
    prev = line;
  }
  return { width, height, data: out };
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 255]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function encodePng(img: Image): Buffer {
  const chunk = (type: string, body: Uint8Array): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
    return Buffer.concat([head, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(img.width, 0);
  ihdr.writeUInt32BE(img.height, 4);
  ihdr[8] = 8;
  ihdr[9] = 6;
  const raw = Buffer.alloc(img.height * (img.width * 4 + 1));
  for (let y = 0; y < img.height; y++) Buffer.from(img.data.subarray(y * img.width * 4, (y + 1) * img.width * 4)).copy(raw, y * (img.width * 4 + 1) + 1);
  return Buffer.concat([Buffer.from(SIGNATURE), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

export interface Diff {
  /** Blocks compared, and those whose mean colour differs by more than the tolerance in a channel. */
  blocks: number;
  differing: number;
  /** The worst block's largest channel difference. */
  worst: number;
  /** The reference with differing blocks painted red. */
  image: Image;
}

/**
 * Compare two screenshots block by block: each `block` x `block` square is reduced to its mean
 * colour, and a block differs when a channel's mean moves by more than `tolerance` (0-255).
 * Averaging is what lets text rendered with other font versions, hinting or antialiasing pass
 * (a glyph that moves a pixel barely changes its block's mean) while a cell of the page
 * tables in another colour (a block of solid colour) does not.
 */
export function compareImages(a: Image, b: Image, block: number, tolerance: number): Diff {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`size ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  const image: Image = { width: a.width, height: a.height, data: Uint8Array.from(a.data) };
  let blocks = 0;
  let differing = 0;
  let worst = 0;
  for (let by = 0; by < a.height; by += block) {
    for (let bx = 0; bx < a.width; bx += block) {
      const sa = [0, 0, 0];
      const sb = [0, 0, 0];
      let n = 0;
      for (let y = by; y < Math.min(a.height, by + block); y++) {
        for (let x = bx; x < Math.min(a.width, bx + block); x++) {
          const o = (y * a.width + x) * 4;
          for (let c = 0; c < 3; c++) {
            sa[c]! += a.data[o + c]!;
            sb[c]! += b.data[o + c]!;
          }
          n++;
        }
      }
      blocks++;
      const d = Math.max(...[0, 1, 2].map((c) => Math.abs(sa[c]! - sb[c]!) / n));
      worst = Math.max(worst, d);
      if (d > tolerance) {
        differing++;
        for (let y = by; y < Math.min(a.height, by + block); y++) {
          for (let x = bx; x < Math.min(a.width, bx + block); x++) {
            const o = (y * a.width + x) * 4;
            image.data[o] = 255;
            image.data[o + 1] = 0;
            image.data[o + 2] = 0;
          }
        }
      }
    }
  }
  return { blocks, differing, worst, image };
}
