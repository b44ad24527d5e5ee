// The kit the demo widgets share (static/widgets/<kind>.mjs): onnxruntime-web, the input
// pre-processing that mirrors sotazoo.transforms, and the common frame of a demo.
//
// Every demo reads its spec (models/<name>.json, written by `sotazoo site build`) and runs the
// exported ONNX file with onnxruntime-web's wasm backend, served from this site (no CDN).
// Pre-processing repeats src/sotazoo/transforms.py step by step with the same arithmetic:
// RGB bytes (decoded by the rules of its docstring) / 255 as float32 -> centre square crop ->
// bilinear resize (half-pixel centres, no antialias, = torch interpolate align_corners=False) ->
// (x - mean) / std, layout NCHW.

const ORT_URL = new URL('./ort/ort.wasm.min.mjs', import.meta.url).href;
let ortPromise = null;

/** onnxruntime-web, loaded once per page; the wasm files sit beside the entry script. */
export function loadOrt() {
  if (!ortPromise) {
    ortPromise = import(ORT_URL).then((ort) => {
      ort.env.wasm.wasmPaths = new URL('./ort/', import.meta.url).href;
      return ort;
    });
  }
  return ortPromise;
}


// ---------------------------------------------------------------- pre-processing

// The decoded-size cap, = sotazoo.transforms.MAX_IMAGE_PIXELS (a test checks they are equal).
export const MAX_IMAGE_PIXELS = 50_000_000;

function tooLarge(name, width, height) {
  const mp = (width * height / 1e6).toFixed(1);
  return new Error(`${name} is ${width} x ${height} pixels, ${mp} megapixels decoded: above the ` +
    `cap of ${MAX_IMAGE_PIXELS / 1e6} megapixels; scale it down first, e.g. to 4000 pixels on ` +
    'its longer side (the models see a few hundred pixels a side)');
}

/** The size an image file's header declares, without decoding its pixels (an <img> element
 *  decodes lazily); null where there is no <img> (a worker) or the header is unreadable. */
async function headerSize(blob) {
  if (typeof Image === 'undefined') return null;
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    await new Promise((ok, fail) => { img.onload = ok; img.onerror = fail; img.src = url; });
    return { width: img.naturalWidth, height: img.naturalHeight };
  } catch {
    return null;
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** Decode an image URL or File to {data: Float32Array (3*H*W, [0,1]), height, width}, by the
 *  rules of transforms.py's docstring: EXIF orientation applied, 16-bit samples cut to their
 *  high byte, no colour management, and alpha composited on black (the canvas is opaque, so
 *  drawImage stores round(v * a / 255)); at most MAX_IMAGE_PIXELS, checked from the header. */
export async function decodeImage(source) {
  let blob = source;
  const name = source.name || source;
  if (typeof source === 'string') {
    const r = await fetch(source);
    if (!r.ok) throw new Error(`could not load ${source} (HTTP ${r.status})`);
    blob = await r.blob();
  }
  const declared = await headerSize(blob);
  if (declared && declared.width * declared.height > MAX_IMAGE_PIXELS) {
    throw tooLarge(name, declared.width, declared.height);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {
      colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image',
    });
  } catch {
    throw new Error(`${name} is not an image this browser can decode`);
  }
  const { width, height } = bitmap;
  if (width * height > MAX_IMAGE_PIXELS) {
    bitmap.close();
    throw tooLarge(name, width, height);
  }
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { alpha: false, willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const data = new Float32Array(3 * width * height);
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    data[i] = rgba[4 * i] / 255;
    data[plane + i] = rgba[4 * i + 1] / 255;
    data[2 * plane + i] = rgba[4 * i + 2] / 255;
  }
  return { data, height, width };
}

/** Centred square crop of side min(H, W), offset floor((H - side) / 2). */
export function centerCropSquare(img) {
  const side = Math.min(img.height, img.width);
  const top = Math.floor((img.height - side) / 2);
  const left = Math.floor((img.width - side) / 2);
  const out = new Float32Array(3 * side * side);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < side; y++) {
      const src = c * img.height * img.width + (top + y) * img.width + left;
      out.set(img.data.subarray(src, src + side), c * side * side + y * side);
    }
  }
  return { data: out, height: side, width: side };
}

/** Bilinear resize with half-pixel centres and no antialiasing (torch align_corners=False). */
export function resizeBilinear(img, size) {
  if (img.height === size && img.width === size) return img;
  const out = new Float32Array(3 * size * size);
  const axis = (inSize) => {
    const scale = Math.fround(inSize / size);
    const idx0 = new Int32Array(size), idx1 = new Int32Array(size), w1 = new Float32Array(size);
    for (let o = 0; o < size; o++) {
      let src = Math.fround(Math.fround(scale * (o + 0.5)) - 0.5);
      if (src < 0) src = 0;
      const i0 = Math.floor(src);
      idx0[o] = i0;
      idx1[o] = Math.min(i0 + 1, inSize - 1);
      w1[o] = Math.fround(src - i0);
    }
    return { idx0, idx1, w1 };
  };
  const ys = axis(img.height), xs = axis(img.width);
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const base = c * img.height * img.width;
    for (let oy = 0; oy < size; oy++) {
      const r0 = base + ys.idx0[oy] * img.width, r1 = base + ys.idx1[oy] * img.width;
      const wy1 = ys.w1[oy], wy0 = f(1 - wy1);
      for (let ox = 0; ox < size; ox++) {
        const x0 = xs.idx0[ox], x1 = xs.idx1[ox], wx1 = xs.w1[ox], wx0 = f(1 - wx1);
        const top = f(f(wx0 * img.data[r0 + x0]) + f(wx1 * img.data[r0 + x1]));
        const bot = f(f(wx0 * img.data[r1 + x0]) + f(wx1 * img.data[r1 + x1]));
        out[c * size * size + oy * size + ox] = f(f(wy0 * top) + f(wy1 * bot));
      }
    }
  }
  return { data: out, height: size, width: size };
}

/** (x - mean) / std per channel, in place. */
export function normalize(img, mean, std) {
  const plane = img.height * img.width;
  for (let c = 0; c < 3; c++) {
    for (let i = c * plane; i < (c + 1) * plane; i++) {
      img.data[i] = Math.fround(Math.fround(img.data[i] - mean[c]) / std[c]);
    }
  }
  return img;
}

export async function preprocess(source, t) {
  const img = await decodeImage(source);
  return normalize(resizeBilinear(centerCropSquare(img), t.size), t.mean, t.std);
}

/** Undo the normalisation of a (3, H, W) output and paint it on a canvas. */
export function paintImage(canvas, data, height, width, mean = [0, 0, 0], std = [1, 1, 1]) {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  const out = ctx.createImageData(width, height);
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = (data[c * plane + i] * std[c] + mean[c]) * 255;
      out.data[4 * i + c] = Math.max(0, Math.min(255, Math.round(v)));
    }
    out.data[4 * i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
}

export function softmax(logits) {
  const m = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}


// ---------------------------------------------------------------- other inputs (mirrors of
// sotazoo.transforms: seeded_normal, tokenize, hole_mask)

/** mulberry32: a 32-bit generator whose integer steps JavaScript and numpy compute alike. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0);
  };
}

/** n standard-normal float32 values from `seed` (Box-Muller on mulberry32's 32-bit draws). */
export function seededNormal(seed, n) {
  const next = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = (next() + 1) / 4294967296; // (0, 1]
    const u2 = next() / 4294967296; // [0, 1)
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** Lower-case words (a-z, 0-9, apostrophe) -> ids of `vocab`, unknown -> unk, padded to len. */
export function tokenize(text, vocab, maxLen, pad = 0, unk = 1) {
  const words = text.toLowerCase().match(/[a-z0-9']+/g) || [];
  const ids = new BigInt64Array(maxLen).fill(BigInt(pad));
  words.slice(0, maxLen).forEach((w, i) => { ids[i] = BigInt(w in vocab ? vocab[w] : unk); });
  return ids;
}

/** The default inpainting mask: 1 = known pixel, 0 = hole (a centred square of side size/2). */
export function holeMask(size) {
  const m = new Float32Array(size * size).fill(1);
  const a = Math.floor(size / 4), b = a + Math.floor(size / 2);
  for (let y = a; y < b; y++) for (let x = a; x < b; x++) m[y * size + x] = 0;
  return m;
}

export function record(tensors) {
  const out = {};
  for (const [k, t] of Object.entries(tensors)) {
    out[k] = { dims: Array.from(t.dims), type: t.type,
               data: Array.from(t.data, (v) => (typeof v === 'bigint' ? Number(v) : v)) };
  }
  return out;
}

// ---------------------------------------------------------------- demo widgets

const sessions = new Map();

export async function session(spec, base) {
  const url = new URL(spec.onnx, base).href;
  if (!sessions.has(url)) {
    sessions.set(url, loadOrt().then((ort) =>
      ort.InferenceSession.create(url, { executionProviders: ['wasm'] })));
  }
  return sessions.get(url);
}

/** A text in both languages: the page's CSS shows the one its switch selects (pages.bi). */
export function tr(en, zh) {
  return el('span', {}, el('span', { class: 'en', lang: 'en' }, en),
    el('span', { class: 'zh', lang: 'zh-CN' }, zh));
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v; else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

export async function runModel(spec, base, feedsByPosition) {
  const [sess, ort] = await Promise.all([session(spec, base), loadOrt()]);
  const feeds = {};
  feedsByPosition.forEach(([type, data, dims], i) => {
    feeds[sess.inputNames[i]] = new ort.Tensor(type, data, dims);
  });
  const t0 = performance.now();
  const out = await sess.run(feeds);
  const ms = performance.now() - t0;
  return { feeds, outputs: sess.outputNames.map((n) => out[n]), named: out, ms };
}

export function imageButton(s, base, onPick) {
  const src = new URL(s.src, base).href;
  const b = el('button', { type: 'button', title: s.name, 'data-sample': s.name },
    el('img', { src, alt: s.name, width: '48', height: '48' }));
  b.addEventListener('click', () => onPick(src, s.name));
  return b;
}

export function textButton(label, onPick) {
  const b = el('button', { type: 'button', 'data-sample': label }, label);
  b.addEventListener('click', onPick);
  return b;
}

/** Common frame: sample buttons, a file picker (image kinds), a status line, an error line. */
export function frame(root, { samples = [], file = null } = {}) {
  const status = el('p', { class: 'demo-status', role: 'status' });
  const error = el('p', { class: 'demo-error', role: 'alert', hidden: '' });
  root.append(el('div', { class: 'demo-samples' }, ...samples));
  if (file) {
    const input = el('input', { type: 'file', accept: 'image/*', 'aria-label': 'your own image / 你自己的图片' });
    input.addEventListener('change', () => input.files[0] && file(input.files[0], input.files[0].name));
    root.append(el('label', { class: 'demo-file' }, tr('or your own image: ', '或上传你自己的图片：'), input));
  }
  root.append(status, error);
  return {
    async run(label, work) {
      root.dataset.state = 'running';
      status.replaceChildren(`${label} …`);
      error.hidden = true;
      try {
        const { text, result } = await work();
        // a text in both languages is [en, zh]; names and numbers alone are a string
        status.replaceChildren(Array.isArray(text) ? tr(...text) : text);
        root.result = { name: label, ...result };
        root.dataset.state = 'done';
      } catch (e) {
        error.replaceChildren(tr(`Could not run the demo: ${e.message || e}`,
          `无法运行演示：${e.message || e}`));
        error.hidden = false;
        status.textContent = '';
        root.dataset.state = 'error';
      }
    },
  };
}

export function summary(r) {
  return { feeds: record(r.feeds), outputs: record(r.named), ms: r.ms };
}

export function outputImage(canvas, t, spec) {
  const [, c, h, w] = t.dims;
  const o = spec.output || {};
  // A grey (1, 1, H, W) output is painted as three equal planes.
  const data = c === 1 ? Float32Array.from({ length: 3 * h * w }, (_, i) => t.data[i % (h * w)]) : t.data;
  paintImage(canvas, data, h, w, o.mean, o.std);
}

/** The attention view of a generator with a second output, the map (1, N_query, N_key) of its
 *  self-attention block (spec.attention: query_grid, key_grid, image_size, all [rows, cols]):
 *  a click on a pixel of the enlarged image picks the query cell that covers it, and each key's
 *  weight, divided by the row's largest, is painted in red over the pixels its cell covers
 *  (papers/sagan/demo.py: `attention_heat`). `root.result.attention_view` records the click. */
export function attentionView(root, spec) {
  const a = spec.attention;
  const [H, W] = a.image_size, [qh, qw] = a.query_grid, [kh, kw] = a.key_grid;
  const k = Math.max(1, Math.floor(192 / W));
  const view = el('canvas', { class: 'demo-attention', width: String(W * k), height: String(H * k),
                              title: 'click a pixel: where does it look? / 点一个像素：它在看哪里？' });
  const note = el('p', { class: 'meta' }, tr('click a pixel of the enlarged image: red shows the ' +
    'positions its self-attention draws on (one row of the attention map)',
  '点击放大图中的一个像素：红色标出它的自注意力所取的位置（注意力图中的一行）'));
  let image = null, attn = null;
  function show(px, py) {
    const ctx = view.getContext('2d');
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, view.width, view.height);
    ctx.drawImage(image, 0, 0, view.width, view.height);
    if (px === null) return null;
    const q = Math.floor((py * qh) / H) * qw + Math.floor((px * qw) / W);
    const row = Array.from(attn.data.slice(q * kh * kw, (q + 1) * kh * kw));
    const top = Math.max(...row);
    const heat = new Float32Array(H * W);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        heat[y * W + x] = row[Math.floor((y * kh) / H) * kw + Math.floor((x * kw) / W)] / top;
        ctx.fillStyle = `rgba(255, 40, 0, ${0.75 * heat[y * W + x]})`;
        ctx.fillRect(x * k, y * k, k, k);
      }
    }
    const ch = (H / qh) * k, cw = (W / qw) * k; // the query cell, outlined
    ctx.strokeStyle = '#00c8ff';
    ctx.lineWidth = 2;
    ctx.strokeRect(Math.floor((px * qw) / W) * cw, Math.floor((py * qh) / H) * ch, cw, ch);
    return { pixel: [px, py], query: q, row, heat: Array.from(heat) };
  }
  view.addEventListener('click', (ev) => {
    if (!attn) return;
    const rect = view.getBoundingClientRect();
    const px = Math.min(W - 1, Math.floor(((ev.clientX - rect.left) / rect.width) * W));
    const py = Math.min(H - 1, Math.floor(((ev.clientY - rect.top) / rect.height) * H));
    const shown = show(px, py);
    if (root.result) root.result.attention_view = shown;
    root.dataset.attention = `${px},${py}`;
  });
  return {
    nodes: [view, note],
    update(imageCanvas, attention) {
      image = imageCanvas;
      attn = attention;
      show(null, null);
    },
  };
}

/** Zero the holes (mask 0) of a normalised (3, size, size) image. */
export function maskImage(data, mask, size) {
  const out = new Float32Array(data.length);
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) out[c * plane + i] = data[c * plane + i] * mask[i];
  }
  return out;
}
