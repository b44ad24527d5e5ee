// The `detect` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import { el, frame, imageButton, paintImage, preprocess, runModel, summary } from '../kit.mjs';

/** image -> boxes: outputs boxes (N, 4) xyxy in input pixels, scores (N), labels (N), already
 *  decoded and NMS-filtered by the graph (papers/<id>/demo.py); the widget only keeps the
 *  scores >= spec.score_threshold and draws them. `result.drawn` lists what it drew. */
export default function mount(root, spec, base) {
  const t = spec.transforms;
  const view = el('canvas', { class: 'demo-detect' });
  const table = el('table', { class: 'demo-top5' });
  const ui = frame(root, {
    samples: (spec.samples || []).map((s) => imageButton(s, base, run)),
    file: run,
  });
  root.append(el('div', { class: 'demo-output' }, view, table));
  function run(source, name) {
    return ui.run(name, async () => {
      const x = await preprocess(source, t);
      const r = await runModel(spec, base, [['float32', x.data, [1, 3, t.size, t.size]]]);
      const [boxes, scores, labels] = r.outputs;
      const keep = [];
      for (let i = 0; i < scores.data.length; i++) {
        if (scores.data[i] >= (spec.score_threshold ?? 0.3)) keep.push(i);
      }
      const k = 4;
      paintImage(view, x.data, t.size, t.size, t.mean, t.std);
      const big = document.createElement('canvas');
      big.width = t.size * k;
      big.height = t.size * k;
      const ctx = big.getContext('2d');
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(view, 0, 0, big.width, big.height);
      ctx.lineWidth = 2;
      ctx.font = '12px sans-serif';
      for (const i of keep) {
        const [x0, y0, x1, y1] = Array.from(boxes.data.slice(4 * i, 4 * i + 4), (v) => v * k);
        const label = spec.labels[Number(labels.data[i])] ?? String(labels.data[i]);
        ctx.strokeStyle = '#ff3b30';
        ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
        ctx.fillStyle = '#ff3b30';
        ctx.fillText(`${label} ${scores.data[i].toFixed(2)}`, x0 + 2, Math.max(12, y0 - 2));
      }
      view.width = big.width;
      view.height = big.height;
      view.getContext('2d').drawImage(big, 0, 0);
      table.replaceChildren(el('tr', {}, el('th', {}, 'label'), el('th', {}, 'score')),
        ...keep.map((i) => el('tr', {},
          el('td', {}, spec.labels[Number(labels.data[i])] ?? String(labels.data[i])),
          el('td', {}, scores.data[i].toFixed(3)))));
      const drawn = keep.map((i) => ({ box: Array.from(boxes.data.slice(4 * i, 4 * i + 4)),
                                       score: scores.data[i], label: Number(labels.data[i]) }));
      return { text: `${name}: ${keep.length} boxes (${r.ms.toFixed(1)} ms)`,
               result: { ...summary(r), drawn } };
    });
  }
}
