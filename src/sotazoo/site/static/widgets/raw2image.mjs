// The `raw2image` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import {
  centerCropSquare, decodeImage, el, frame, imageButton, outputImage, paintImage, resizeBilinear,
  seededNormal, summary, runModel, tr,
} from '../kit.mjs';

/** sRGB in [0, 1] -> linear light (IEC 61966-2-1), as raw.srgb_to_linear. */
const toLinear = (v) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);

/** A photograph's short exposure, as papers/sid/demo.py's `darken`: the (3, S, S) image in
 *  [0, 1] -> an RGGB mosaic (S * S) of digital numbers above black, whole numbers in [0, 255]. */
export function darken(img, ratio, r) {
  const s = img.width, plane = s * s;
  const z = seededNormal(r.seed, plane);
  const scale = (r.white - r.black) / ratio;
  const out = new Float32Array(plane);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const c = (y % 2 === 0 && x % 2 === 0) ? 0 : (y % 2 === 1 && x % 2 === 1) ? 2 : 1;
      const i = y * s + x;
      const signal = (toLinear(img.data[c * plane + i]) / r.white_balance[c]) * scale;
      const noisy = signal + Math.sqrt(signal * r.gain + r.read_noise ** 2) * z[i];
      out[i] = Math.min(255, Math.max(0, Math.floor(noisy + 0.5)));
    }
  }
  return out;
}

/** A dark raw mosaic + a ratio -> the network's sRGB image. A bundled sample is a greyscale PNG
 *  of the mosaic (its values: digital numbers above black); a photograph of yours is cropped,
 *  resized and darkened here into such a mosaic first. Left: the mosaic multiplied by the ratio
 *  with nothing else done; right: the network. */
export default function mount(root, spec, base) {
  const t = spec.transforms, r = spec.raw, size = t.size;
  const before = el('canvas', { class: 'demo-raw' });
  const after = el('canvas', { class: 'demo-after' });
  const select = el('select', { 'aria-label': 'amplification ratio · 放大倍数' },
    ...r.ratios.map((v) => el('option', { value: String(v) }, `x${v}`)));
  const ui = frame(root, {
    samples: (spec.samples || []).map((s) => imageButton(s, base, (src, name) => pickSample(src, name, s.ratio))),
    file: pickPhoto,
  });
  root.append(el('label', {}, tr('amplification ratio: ', '放大倍数：'), select),
    el('div', { class: 'demo-output' }, before, after),
    el('p', { class: 'meta' }, tr('left: the raw mosaic times the ratio, nothing else; right: the network',
      '左边：原始马赛克乘以放大倍数，不做其他处理；右边：网络的输出')));
  let current = null; // { name, mosaic (a sample's), photo (yours) }
  select.addEventListener('change', () => current && ui.run(current.name, infer));
  async function pickSample(src, name, ratio) {
    select.value = String(ratio);
    return ui.run(name, async () => {
      const img = await decodeImage(src);
      if (img.width !== size || img.height !== size) throw new Error(`${name} is not ${size}x${size}`);
      current = { name, mosaic: Float32Array.from(img.data.subarray(0, size * size), (v) => Math.round(v * 255)) };
      return infer();
    });
  }
  function pickPhoto(file, name) {
    return ui.run(name, async () => {
      current = { name, photo: resizeBilinear(centerCropSquare(await decodeImage(file)), size) };
      return infer();
    });
  }
  async function infer() {
    const ratio = Number(select.value);
    const mosaic = current.photo ? darken(current.photo, ratio, r) : current.mosaic;
    const shown = new Float32Array(3 * size * size);
    for (let i = 0; i < size * size; i++) {
      const v = Math.min(1, (mosaic[i] * ratio) / (r.white - r.black));
      shown[i] = shown[size * size + i] = shown[2 * size * size + i] = v;
    }
    paintImage(before, shown, size, size);
    const res = await runModel(spec, base, [
      ['float32', mosaic, [1, 1, size, size]],
      ['float32', Float32Array.of(ratio), [1]],
    ]);
    outputImage(after, res.outputs[0], spec);
    const what = `${current.name} x${ratio}`;
    return { text: [`${what}: ${res.ms.toFixed(1)} ms`, `${what}：${res.ms.toFixed(1)} ms`],
             result: { ...summary(res), ratio } };
  }
}
