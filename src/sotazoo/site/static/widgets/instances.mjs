// The `instances` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import { el, frame, imageButton, paintImage, preprocess, runModel, summary, tr } from '../kit.mjs';

const COLOURS = [[230, 25, 75], [60, 180, 75], [67, 99, 216], [245, 130, 49], [145, 30, 180],
  [0, 128, 128], [240, 50, 230], [154, 99, 36]];

/** image -> instances: outputs boxes (D, 4) xyxy in input pixels, scores (D), labels (D) and
 *  masks (D, H, W), each detection's mask probabilities already pasted into the image by the
 *  graph (papers/<id>/demo.py). The widget paints every pixel whose probability exceeds
 *  spec.mask_threshold in its detection's colour (the best detection on top), then draws the
 *  boxes with their label and score. `result.drawn` lists each detection and its painted
 *  pixel count. */
export default function mount(root, spec, base) {
  const t = spec.transforms;
  const view = el('canvas', { class: 'demo-detect' });
  const table = el('table', { class: 'demo-top5' });
  const ui = frame(root, {
    samples: (spec.samples || []).map((s) => imageButton(s, base, run)),
    file: run,
  });
  root.append(el('div', { class: 'demo-output' }, view, table),
    el('p', { class: 'meta' }, tr('each object\'s own pixels in the colour of its box',
      '每个物体自己的像素涂成其框的颜色')));
  function run(source, name) {
    return ui.run(name, async () => {
      const x = await preprocess(source, t);
      const r = await runModel(spec, base, [['float32', x.data, [1, 3, t.size, t.size]]]);
      const [boxes, scores, labels, masks] = r.outputs;
      const n = scores.data.length, [h, w] = masks.dims.slice(1);
      const thr = spec.mask_threshold ?? 0.5;
      paintImage(view, x.data, w, h, t.mean, t.std);
      const ctx0 = view.getContext('2d');
      const img = ctx0.getImageData(0, 0, w, h);
      const painted = new Array(n).fill(0);
      for (let d = n - 1; d >= 0; d--) { // the best last, so that it ends on top
        const c = COLOURS[d % COLOURS.length];
        for (let i = 0; i < h * w; i++) {
          if (masks.data[d * h * w + i] > thr) {
            painted[d] += 1;
            for (let j = 0; j < 3; j++) img.data[4 * i + j] = Math.round(0.45 * c[j] + 0.55 * img.data[4 * i + j]);
          }
        }
      }
      ctx0.putImageData(img, 0, 0);
      const k = 4;
      const big = document.createElement('canvas');
      big.width = w * k;
      big.height = h * k;
      const ctx = big.getContext('2d');
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(view, 0, 0, big.width, big.height);
      ctx.font = '13px sans-serif';
      ctx.textBaseline = 'top';
      const label = (d) => spec.labels[Number(labels.data[d])] ?? String(labels.data[d]);
      for (let d = 0; d < n; d++) {
        const [x0, y0, x1, y1] = Array.from(boxes.data.slice(4 * d, 4 * d + 4)).map((v) => v * k);
        const colour = `rgb(${COLOURS[d % COLOURS.length].join(',')})`;
        ctx.strokeStyle = colour;
        ctx.lineWidth = 2;
        ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
        const text = `${label(d)} ${scores.data[d].toFixed(2)}`;
        const tw = ctx.measureText(text).width + 6;
        const tx = Math.min(Math.max(0, x0), big.width - tw), ty = Math.max(0, y0 - 16);
        ctx.fillStyle = 'rgba(255, 255, 255, 0.9)';
        ctx.fillRect(tx, ty, tw, 16);
        ctx.fillStyle = '#111';
        ctx.fillText(text, tx + 3, ty + 2);
      }
      view.width = big.width;
      view.height = big.height;
      view.getContext('2d').drawImage(big, 0, 0);
      table.replaceChildren(el('tr', {}, el('th', {}, tr('label', '类别')), el('th', {}, tr('score', '得分')),
        el('th', {}, tr('pixels', '像素'))),
        ...Array.from({ length: n }, (_, d) => el('tr', {}, el('td', {}, label(d)),
          el('td', {}, scores.data[d].toFixed(3)), el('td', {}, String(painted[d])))));
      const drawn = Array.from({ length: n }, (_, d) => ({
        box: Array.from(boxes.data.slice(4 * d, 4 * d + 4)), score: scores.data[d],
        label: Number(labels.data[d]), pixels: painted[d] }));
      return { text: [`${name}: ${n} ${n === 1 ? 'object' : 'objects'} (${r.ms.toFixed(1)} ms)`,
                      `${name}：${n} 个物体（${r.ms.toFixed(1)} ms）`],
               result: { ...summary(r), drawn } };
    });
  }
}
