// The `detect` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import { el, frame, imageButton, paintImage, preprocess, runModel, summary, tr } from '../kit.mjs';

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
      ctx.font = '13px sans-serif';
      ctx.textBaseline = 'top';
      // one colour per class; the label is dark text on a white tag, readable on any box
      const colours = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080'];
      // Both papers score each class with its own sigmoid, so one box can carry two classes (NMS
      // runs per class, as in the papers): boxes that coincide (IoU >= 0.9) are drawn once,
      // with every class on one tag, the best first.
      const box = (i) => Array.from(boxes.data.slice(4 * i, 4 * i + 4));
      const iou = (a, b) => {
        const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
        const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
        const area = (r) => (r[2] - r[0]) * (r[3] - r[1]);
        return (w * h) / (area(a) + area(b) - w * h || 1);
      };
      const groups = [];
      for (const i of [...keep].sort((a, b) => scores.data[b] - scores.data[a])) {
        const g = groups.find((m) => iou(box(m[0]), box(i)) >= 0.9);
        if (g) g.push(i); else groups.push([i]);
      }
      const tags = [];
      for (const g of groups) {
        const [x0, y0, x1, y1] = box(g[0]).map((v) => v * k);
        const c = Number(labels.data[g[0]]);
        ctx.strokeStyle = colours[c % colours.length];
        ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
        tags.push([x0, y0, c, g.map((i) => `${spec.labels[Number(labels.data[i])] ?? labels.data[i]} ` +
          `${scores.data[i].toFixed(2)}`).join(' / ')]);
      }
      const placed = [];
      for (const [x0, y0, c, text] of tags) { // above the box, moved down past tags drawn before
        const w = ctx.measureText(text).width + 6, h = 16;
        let x = Math.min(Math.max(0, x0), big.width - w), y = Math.max(0, y0 - h);
        while (placed.some(([px, py, pw]) => x < px + pw && px < x + w && y < py + h && py < y + h)) {
          y += h;
        }
        placed.push([x, y, w]);
        ctx.fillStyle = 'rgba(255, 255, 255, 0.9)';
        ctx.fillRect(x, y, w, h);
        ctx.strokeStyle = colours[c % colours.length];
        ctx.lineWidth = 1;
        ctx.strokeRect(x, y, w, h);
        ctx.lineWidth = 2;
        ctx.fillStyle = '#111';
        ctx.fillText(text, x + 3, y + 2);
      }
      view.width = big.width;
      view.height = big.height;
      view.getContext('2d').drawImage(big, 0, 0);
      table.replaceChildren(el('tr', {}, el('th', {}, tr('label', '类别')), el('th', {}, tr('score', '得分'))),
        ...keep.map((i) => el('tr', {},
          el('td', {}, spec.labels[Number(labels.data[i])] ?? String(labels.data[i])),
          el('td', {}, scores.data[i].toFixed(3)))));
      const drawn = keep.map((i) => ({ box: Array.from(boxes.data.slice(4 * i, 4 * i + 4)),
                                       score: scores.data[i], label: Number(labels.data[i]) }));
      const n = keep.length;
      return { text: [`${name}: ${n} ${n === 1 ? 'box' : 'boxes'} (${r.ms.toFixed(1)} ms)`,
                      `${name}：${n} 个框（${r.ms.toFixed(1)} ms）`],
               result: { ...summary(r), drawn, groups: groups.map((g) => g.length) } };
    });
  }
}
