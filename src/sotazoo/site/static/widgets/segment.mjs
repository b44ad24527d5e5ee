// The `segment` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import { el, frame, imageButton, paintImage, preprocess, runModel, summary, tr } from '../kit.mjs';

// One colour per class, the first (background) left unpainted.
const PALETTE = [null, [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128]];

/** The per-pixel argmax of (1, K, H, W) logits, first class on ties (as numpy's argmax). */
export function argmaxMap(t) {
  const [, k, h, w] = t.dims;
  const plane = h * w;
  const out = new Uint8Array(plane);
  for (let i = 0; i < plane; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (t.data[c * plane + i] > t.data[best * plane + i]) best = c;
    out[i] = best;
  }
  return out;
}

/** image -> a class per pixel, painted at half opacity over the image, with a legend. */
export default function mount(root, spec, base) {
  const t = spec.transforms;
  const canvas = el('canvas', { class: 'demo-after' });
  const legend = el('ul', { class: 'demo-legend' });
  const ui = frame(root, {
    samples: (spec.samples || []).map((s) => imageButton(s, base, run)),
    file: run,
  });
  root.append(el('div', { class: 'demo-output' }, canvas, legend),
    el('p', { class: 'meta' }, tr('each pixel coloured by the class the model gives it; background unpainted',
      '每个像素按模型给出的类别着色；背景不着色')));
  function run(source, name) {
    return ui.run(name, async () => {
      const x = await preprocess(source, t);
      const r = await runModel(spec, base, [['float32', x.data, [1, 3, t.size, t.size]]]);
      const classes = argmaxMap(r.outputs[0]);
      paintImage(canvas, x.data, t.size, t.size, t.mean, t.std);
      const ctx = canvas.getContext('2d');
      const img = ctx.getImageData(0, 0, t.size, t.size);
      const counts = new Array(spec.labels.length).fill(0);
      classes.forEach((c, i) => {
        counts[c] += 1;
        const colour = PALETTE[c % PALETTE.length];
        if (!colour) return;
        for (let j = 0; j < 3; j++) img.data[4 * i + j] = Math.round((img.data[4 * i + j] + colour[j]) / 2);
      });
      ctx.putImageData(img, 0, 0);
      legend.replaceChildren(...spec.labels.map((label, c) => {
        const colour = PALETTE[c % PALETTE.length];
        const swatch = el('span', { class: 'demo-swatch',
          style: colour ? `background: rgb(${colour.join(',')})` : 'border: 1px solid currentColor' });
        return el('li', {}, swatch, ` ${label}: ${(100 * counts[c] / classes.length).toFixed(1)}%`);
      }));
      return { text: [`${name}: ${r.ms.toFixed(1)} ms`, `${name}：${r.ms.toFixed(1)} ms`],
               result: { ...summary(r), classes: Array.from(classes) } };
    });
  }
}
