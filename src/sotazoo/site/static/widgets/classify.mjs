// The `classify` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import { el, frame, tr, imageButton, paintImage, preprocess, runModel, softmax, summary } from '../kit.mjs';

/** image -> top-5 labels */
export default function mount(root, spec, base) {
  const table = el('table', { class: 'demo-top5' });
  const preview = el('canvas', { class: 'demo-preview', width: '96', height: '96' });
  const ui = frame(root, {
    samples: (spec.samples || []).map((s) => imageButton(s, base, run)),
    file: run,
  });
  root.append(el('div', { class: 'demo-output' }, preview, table));
  function run(source, name) {
    return ui.run(name, async () => {
      const t = spec.transforms;
      const x = await preprocess(source, t);
      paintImage(preview, x.data, t.size, t.size, t.mean, t.std);
      const r = await runModel(spec, base, [['float32', x.data, [1, 3, t.size, t.size]]]);
      const logits = Array.from(r.outputs[0].data);
      const probs = softmax(logits);
      const top = probs.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]).slice(0, 5);
      table.replaceChildren(el('tr', {}, el('th', {}, tr('label', '类别')), el('th', {}, tr('probability', '概率'))),
        ...top.map(([p, i]) => el('tr', {}, el('td', {}, spec.labels[i]),
          el('td', {}, `${(100 * p).toFixed(1)}%`))));
      return {
        text: [`${name}: ${spec.labels[top[0][1]]} (${r.ms.toFixed(1)} ms in the browser)`,
               `${name}：${spec.labels[top[0][1]]}（浏览器中 ${r.ms.toFixed(1)} ms）`],
        result: { ...summary(r), logits, input: Array.from(x.data) },
      };
    });
  }
}
