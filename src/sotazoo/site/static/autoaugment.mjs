// AutoAugment's 16 image operations in the browser (and in node): a port of
// src/sotazoo/papers/autoaugment/method.py that applies a published policy to an image the
// reader picks. No DOM (only kit.mjs's seeded generator is imported): images are ImageData-like {width, height, data}, `data`
// an RGBA Uint8ClampedArray; every op returns a new image and leaves its input alone.
//
// Back-end matched: method.py's PIL back-end with NEAREST resampling (its default), on "RGB"
// images. Chosen because PIL's arithmetic can be replayed bit for bit in JavaScript: the point
// ops are 256-entry lookup tables built with integer or double arithmetic (JS numbers are
// doubles), the blends behind the enhance ops and SamplePairing are a few single-precision
// operations (replayed with Math.fround), and NEAREST geometry steps through 16.16 fixed-point
// integers (doubles on huge images), whose order is observable and replayable. The uint8-tensor
// back-end instead runs its geometry through float32 grid generation and sampling (affine_grid /
// grid_sample), whose rounding depends on the kernel's evaluation order and cannot be pinned
// from outside, and its enhance ops round differently between torchvision's v1 and v2 kernels.
// What each op does, as measured against PIL and checked by tests/papers/test_autoaugment_js.py
// (equal on every pixel there):
// - Invert 255 - x; Solarize x >= threshold -> 255 - x; Posterize keeps the top `bits` bits.
// - AutoContrast per channel: the linear map sending the channel's lowest level to 0 and its
//   highest to 255, lut[i] = trunc(i * scale - lo * scale) in doubles, clipped to 0..255;
//   identity for a single-level channel.
// - Equalize per channel: with h the histogram and `last` the count of the highest level used,
//   step = (N - last) div 255, lut[i] = (step div 2 + h[0] + ... + h[i - 1]) div step, clipped to
//   255; identity when step is 0 (as where a single level is used).
// - Brightness, Color, Contrast, Sharpness blend the image with a degenerate one (black; its
//   grey; the grey of its mean grey; its 3x3 smoothing) by the enhance factor f:
//   out = trunc(d + f (x - d)), all in float32, clipped to 0..255 (Image.blend). Grey is ITU-R
//   601 luma in 16.16 fixed point, rounded; the mean grey rounds half up; the smoothing is the
//   kernel [1 1 1; 1 5 1; 1 1 1] / 13, rounded, with the 1-pixel border left unfiltered.
// - SamplePairing: the same blend of the image towards `other` with weight w.
// - ShearX/Y, TranslateX/Y, Rotate: output pixel (x, y) takes input pixel floor(A (x + .5, y + .5)
//   + c), fill outside. PIL evaluates this in 16.16 fixed point (coefficients rounded to 1/65536,
//   then exact integer steps) whenever the mapped corners stay within +-32768 px, else in
//   doubles stepped pixel by pixel; both are replayed here. Rotate turns counter-clockwise
//   about (W / 2, H / 2).
// - Cutout: the square of method.py's `_cutout_box`, painted with `fill`.
// The alpha channel rides along: carried by the geometric ops, 255 where `fill` paints, unchanged
// elsewhere. Platform note: the float32 blends assume no fused multiply-add in PIL's build (true
// of x86-64 wheels); an FMA build could differ by one level on rare pixels.
//
// The policies are not copied here: the site build writes them from policies.py into the demo's
// spec (papers/autoaugment/demo.py) as JSON ({"imagenet": [[["Posterize", 0.4, 8],
// ["Rotate", 0.6, 9]], ...], ...}), read by `loadPolicies`. Draws ({index, apply, signs, centers}) have the shape of method.py's `Draws`, so
// Python's `draw()` can drive this code; `makeDraws` makes them in the page from a seeded PRNG
// (kit.mjs's mulberry32, not Python's generator).

import { mulberry32 } from './kit.mjs';

export const OPS = Object.freeze([
  'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate', 'AutoContrast', 'Invert',
  'Equalize', 'Solarize', 'Posterize', 'Contrast', 'Color', 'Brightness', 'Sharpness',
  'Cutout', 'SamplePairing',
]);
export const MAX_LEVEL = 9;
export const REFERENCE_SIZE = 331;

const range = (start, end, signed, unit) => Object.freeze({ start, end, signed, unit });
const ENHANCE = range(0.1, 1.9, false, 'enhance factor (1 = identity)');
/** method.py's RANGES: each op's parameter at bin 0 (`start`) and the top bin (`end`). */
export const RANGES = Object.freeze({
  ShearX: range(0.0, 0.3, true, 'shear coefficient'),
  ShearY: range(0.0, 0.3, true, 'shear coefficient'),
  TranslateX: range(0.0, 150 / REFERENCE_SIZE, true, 'fraction of the width, floored'),
  TranslateY: range(0.0, 150 / REFERENCE_SIZE, true, 'fraction of the height, floored'),
  Rotate: range(0.0, 30.0, true, 'degrees'),
  Solarize: range(256.0, 0.0, false, 'threshold: pixels >= it are inverted'),
  Posterize: range(8.0, 4.0, false, 'bits kept, rounded'),
  Contrast: ENHANCE,
  Color: ENHANCE,
  Brightness: ENHANCE,
  Sharpness: ENHANCE,
  Cutout: range(0.0, 60 / REFERENCE_SIZE, false, 'side, fraction of the shorter side'),
  SamplePairing: range(0.0, 0.4, false, 'weight of the other image'),
});

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(v) {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The op's unsigned parameter at bin `level` for an image of `size` [H, W], with method.py's
 *  arithmetic (same operation order, so the same doubles); null for ops without one. */
export function magnitude(op, level, size = [REFERENCE_SIZE, REFERENCE_SIZE],
  maxLevel = MAX_LEVEL) {
  if (!OPS.includes(op)) throw new Error(`unknown AutoAugment op ${op}`);
  if (!(level >= 0 && level <= maxLevel)) {
    throw new Error(`magnitude bin ${level} outside 0..${maxLevel}`);
  }
  const r = RANGES[op];
  if (!r) return null;
  const v = r.start + (r.end - r.start) * level / maxLevel;
  const side = { TranslateX: size[1], TranslateY: size[0], Cutout: Math.min(...size) }[op];
  if (side !== undefined) return Math.floor(v * side + 1e-9); // whole pixels
  return op === 'Posterize' ? roundHalfEven(v) : v;
}

// ---------------------------------------------------------------- helpers

const f32 = Math.fround;
const newImage = (width, height) =>
  ({ width, height, data: new Uint8ClampedArray(width * height * 4) });
const copyImage = (img) =>
  ({ width: img.width, height: img.height, data: new Uint8ClampedArray(img.data) });

/** Per-channel lookup tables (three arrays of 256) applied to R, G, B. */
function applyLuts(img, luts) {
  const out = copyImage(img);
  const d = out.data;
  for (let i = 0; i < d.length; i += 4) for (let c = 0; c < 3; c++) d[i + c] = luts[c][d[i + c]];
  return out;
}

function histograms(img) {
  const h = [0, 1, 2].map(() => new Float64Array(256));
  const d = img.data;
  for (let i = 0; i < d.length; i += 4) for (let c = 0; c < 3; c++) h[c][d[i + c]]++;
  return h;
}

const identityLut = () => Array.from({ length: 256 }, (_, i) => i);
const applyLut = (img, f) => applyLuts(img, [0, 1, 2].map(() => identityLut().map(f)));

/** Image.blend(a, b, w): a + w (b - a) in float32, truncated and clipped; alpha from `alphaOf`. */
function blend(a, b, w, alphaOf) {
  const out = copyImage(alphaOf);
  const d = out.data;
  const wf = f32(w);
  for (let i = 0; i < d.length; i++) {
    if ((i & 3) === 3) continue;
    // f32(x op y) of float32 operands is float32 arithmetic: doubles carry >= 2 * 24 + 2 bits,
    // so rounding first to double and then to float32 gives the float32-rounded result
    const t = f32(a[i] + f32(wf * (b[i] - a[i])));
    d[i] = t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t);
  }
  return out;
}

// ITU-R 601-2 luma weights (0.299, 0.587, 0.114) in 16.16 fixed point, rounded; they sum to 65536.
const LUMA = [0.299, 0.587, 0.114].map((w) => Math.round(w * 65536));
const luma = (d, i) => (d[i] * LUMA[0] + d[i + 1] * LUMA[1] + d[i + 2] * LUMA[2] + 32768) >>> 16;

/** The enhance ops' degenerate images, as flat RGBA arrays (their alpha is never read). */
function degenerate(op, img) {
  const { width: w, height: h, data: d } = img;
  const out = new Uint8ClampedArray(d.length);
  if (op === 'Brightness') return out; // black
  if (op === 'Color' || op === 'Contrast') {
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) {
      const g = luma(d, i);
      out[i] = out[i + 1] = out[i + 2] = g;
      sum += g;
    }
    if (op === 'Color') return out;
    return out.fill(Math.floor(sum / (w * h) + 0.5)); // the mean grey, rounded half up
  }
  // Sharpness: the 3x3 smoothing; the border keeps the image's pixels.
  out.set(d);
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      for (let c = 0; c < 3; c++) {
        const i = (y * w + x) * 4 + c;
        let s = 4 * d[i];
        for (let dy = -w * 4; dy <= w * 4; dy += w * 4) {
          for (let dx = -4; dx <= 4; dx += 4) s += d[i + dy + dx];
        }
        // s / 13 rounded. PIL sums in float32, but s / 13 lies at least 1/26 from a rounding
        // boundary (13 is odd), far beyond float32's error: the same integer either way.
        out[i] = Math.floor((s + 6) / 13);
      }
    }
  }
  return out;
}

function fillColor(fill) {
  const f = typeof fill === 'number' ? [fill] : Array.from(fill);
  if (f.length === 1) return [0, 0, 0].map(() => Math.trunc(f[0]));
  if (f.length !== 3) throw new Error(`fill must be a number or 3 numbers, got ${fill}`);
  return f.map(Math.trunc);
}

/** Image.transform(AFFINE, [a, b, c, d, e, f], NEAREST): output (x, y) takes the input pixel at
 *  floor(a (x + .5) + b (y + .5) + c, d (x + .5) + e (y + .5) + f), or `rgb` outside. As PIL, the
 *  sums are built by stepping from the first pixel centre: in 16.16 fixed point (coefficients
 *  rounded to 1/65536) while the mapped corners fit in +-32768, else in doubles, whose rounding
 *  then accumulates along the steps (which decides exact ties, e.g. a shear of 1/15 at x = 7). */
function affine(img, [a, b, c, d, e, f], rgb) {
  const { width: w, height: h, data: src } = img;
  const out = newImage(w, h);
  const dst = out.data;
  const fits = [[0, 0], [w, 0], [0, h], [w, h]].every(
    ([x, y]) => Math.abs(a * x + b * y + c) < 32768 && Math.abs(d * x + e * y + f) < 32768);
  const toStep = fits ? (v) => Math.floor(v * 65536 + 0.5) : (v) => v;
  const toPixel = fits ? (v) => Math.floor(v / 65536) : Math.floor; // integers: exact in doubles
  const [A, B, D, E] = [a, b, d, e].map(toStep);
  let rowX = toStep(c + b * 0.5 + a * 0.5);
  let rowY = toStep(f + e * 0.5 + d * 0.5);
  for (let y = 0; y < h; y++, rowX += B, rowY += E) {
    let sx = rowX;
    let sy = rowY;
    for (let x = 0; x < w; x++, sx += A, sy += D) {
      const xi = toPixel(sx);
      const yi = toPixel(sy);
      const o = (y * w + x) * 4;
      if (xi >= 0 && xi < w && yi >= 0 && yi < h) {
        dst.set(src.subarray((yi * w + xi) * 4, (yi * w + xi) * 4 + 4), o);
      } else {
        dst[o] = rgb[0]; dst[o + 1] = rgb[1]; dst[o + 2] = rgb[2]; dst[o + 3] = 255;
      }
    }
  }
  return out;
}

/** method.py's `_cutout_box`: [x0, y0, x1, y1] of a side x side square at `center` (fractions of
 *  H and W), clipped to the image. */
export function cutoutBox(width, height, side, [fy, fx]) {
  const cy = Math.min(Math.trunc(fy * height), height - 1);
  const cx = Math.min(Math.trunc(fx * width), width - 1);
  const half = Math.floor(side / 2);
  return [Math.max(cx - half, 0), Math.max(cy - half, 0),
    Math.min(cx - half + side, width), Math.min(cy - half + side, height)];
}

// ---------------------------------------------------------------- the ops

/** One op with parameter `v` (from `magnitude`; ignored by AutoContrast, Invert, Equalize).
 *  `sign` (+1 / -1) orients shear, translate and rotate; `center` ([fy, fx] in [0, 1)) places
 *  Cutout; `other` is SamplePairing's second image, of the same size; `fill` (0..255, one or three
 *  values) paints what geometry uncovers and Cutout's square. */
export function applyOp(img, op, v, options = {}) {
  const { sign = 1, center = [0.5, 0.5], other = null, fill = 128 } = options;
  const { width: w, height: h } = img;
  if (img.data.length !== w * h * 4) throw new Error('image data must be RGBA, 4 bytes a pixel');
  if (sign !== 1 && sign !== -1) throw new Error(`sign must be +1 or -1, got ${sign}`);
  const rgb = fillColor(fill);
  switch (op) {
    case 'ShearX': return affine(img, [1, sign * v, 0, 0, 1, 0], rgb);
    case 'ShearY': return affine(img, [1, 0, 0, sign * v, 1, 0], rgb);
    case 'TranslateX': return affine(img, [1, 0, -sign * v, 0, 1, 0], rgb);
    case 'TranslateY': return affine(img, [1, 0, 0, 0, 1, -sign * v], rgb);
    case 'Rotate': {
      // Inverse map of a counter-clockwise turn (y points down) about the image centre.
      const t = sign * v * (Math.PI / 180);
      const [co, si, cx, cy] = [Math.cos(t), Math.sin(t), w / 2, h / 2];
      return affine(img, [co, -si, cx - co * cx + si * cy, si, co, cy - si * cx - co * cy], rgb);
    }
    case 'Invert': return applyLut(img, (i) => 255 - i);
    case 'Solarize': return applyLut(img, (i) => (i < v ? i : 255 - i));
    case 'Posterize': {
      const mask = (0xff << (8 - v)) & 0xff;
      return applyLut(img, (i) => i & mask);
    }
    case 'AutoContrast':
      return applyLuts(img, histograms(img).map((hist) => {
        let lo = 0;
        let hi = 255;
        while (lo < 255 && !hist[lo]) lo++;
        while (hi > 0 && !hist[hi]) hi--;
        if (hi <= lo) return identityLut();
        const scale = 255 / (hi - lo);
        const offset = -lo * scale;
        return identityLut().map((i) => Math.min(Math.max(Math.trunc(i * scale + offset), 0), 255));
      }));
    case 'Equalize':
      return applyLuts(img, histograms(img).map((hist) => {
        const used = hist.filter((n) => n > 0);
        const total = used.reduce((s, n) => s + n, 0);
        const step = Math.floor((total - used[used.length - 1]) / 255);
        if (!step) return identityLut(); // also where a single level is used
        let n = Math.floor(step / 2);
        return identityLut().map((i) => {
          const out = Math.min(Math.floor(n / step), 255);
          n += hist[i];
          return out;
        });
      }));
    case 'Brightness': case 'Color': case 'Contrast': case 'Sharpness':
      return blend(degenerate(op, img), img.data, v, img);
    case 'Cutout': {
      const out = copyImage(img);
      const [x0, y0, x1, y1] = cutoutBox(w, h, v, center);
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) out.data.set([...rgb, 255], (y * w + x) * 4);
      }
      return out;
    }
    case 'SamplePairing':
      if (!other || other.width !== w || other.height !== h) {
        throw new Error('SamplePairing needs `other`, an image of the same size');
      }
      return blend(img.data, other.data, v, img);
    default: throw new Error(`unknown AutoAugment op ${op}`);
  }
}

// ---------------------------------------------------------------- policies and draws

/** The policies as the site build writes them from policies.py (a JSON string or its parsed
 *  object, {name: [[[op, probability, bin], ...], ...]}), checked and frozen. */
export function loadPolicies(json, maxLevel = MAX_LEVEL) {
  const raw = typeof json === 'string' ? JSON.parse(json) : json;
  const policies = {};
  for (const [name, subs] of Object.entries(raw)) {
    if (!Array.isArray(subs) || !subs.length) throw new Error(`policy ${name} has no sub-policies`);
    policies[name] = Object.freeze(subs.map((sub) => Object.freeze(sub.map(([op, p, level]) => {
      if (!OPS.includes(op) || !(p >= 0 && p <= 1) || !(level >= 0 && level <= maxLevel)) {
        throw new Error(`bad policy entry ${JSON.stringify([op, p, level])} in ${name}`);
      }
      return Object.freeze([op, p, level]);
    }))));
  }
  return Object.freeze(policies);
}

/** A seeded uniform generator on [0, 1): kit.mjs's mulberry32 integers / 2^32, the page's source
 *  of draws. */
export function uniforms(seed) {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

/** One image's draws, as method.py's `draw()` makes them from its uniforms: a sub-policy, then
 *  per op u < p to run it, a sign and a Cutout centre; 1 + 4 * ops numbers from `random`. */
export function makeDraws(policy, random) {
  const u = Array.from({ length: 1 + 4 * Math.max(...policy.map((s) => s.length)) }, random);
  const index = Math.min(Math.floor(u[0] * policy.length), policy.length - 1);
  const ops = policy[index];
  return {
    index,
    apply: ops.map(([, p], i) => u[1 + 4 * i] < p),
    signs: ops.map((_, i) => (u[2 + 4 * i] < 0.5 ? 1 : -1)),
    centers: ops.map((_, i) => [u[3 + 4 * i], u[4 + 4 * i]]),
  };
}

/** Runs `subPolicy`'s ops in order where `draws.apply` says so, with the draws' signs and
 *  centres, each at its bin's magnitude for this image's size (method.AutoAugment.apply).
 *  Returns `img` itself where no op runs. */
export function applySubPolicy(img, subPolicy, draws, options = {}) {
  const { other = null, fill = 128, maxLevel = MAX_LEVEL } = options;
  if (draws.apply.length !== subPolicy.length) throw new Error('draws do not fit the sub-policy');
  subPolicy.forEach(([op, , level], i) => {
    if (!draws.apply[i]) return;
    const v = magnitude(op, level, [img.height, img.width], maxLevel);
    img = applyOp(img, op, v, { sign: draws.signs[i], center: draws.centers[i], other, fill });
  });
  return img;
}

/** One augmented image: the sub-policy `draws.index` of `policy` (a `loadPolicies` entry). */
export function augment(img, policy, draws, options = {}) {
  return applySubPolicy(img, policy[draws.index], draws, options);
}
