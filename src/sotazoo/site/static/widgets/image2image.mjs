// The `image2image` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import { el, frame, tr, imageButton, outputImage, paintImage, preprocess, runModel, summary } from '../kit.mjs';

/** image -> image, shown with a before/after slider */
export default function mount(root, spec, base) {
  const before = el('canvas', { class: 'demo-before' });
  const after = el('canvas', { class: 'demo-after' });
  const slider = el('input', { type: 'range', min: '0', max: '100', value: '50',
                               'aria-label': 'before / after · 处理前 / 处理后' });
  const stack = el('div', { class: 'demo-compare' }, before, after);
  slider.addEventListener('input', () => {
    after.style.clipPath = `inset(0 0 0 ${slider.value}%)`;
  });
  after.style.clipPath = 'inset(0 0 0 50%)';
  const ui = frame(root, {
    samples: (spec.samples || []).map((s) => imageButton(s, base, run)),
    file: run,
  });
  root.append(el('div', { class: 'demo-output' }, stack), slider,
    el('p', { class: 'meta' }, tr('left of the line: the input, scaled by the browser; right: the model',
      '分界线左边：输入图像（由浏览器放大）；右边：模型的输出')));
  function run(source, name) {
    return ui.run(name, async () => {
      const t = spec.transforms;
      const x = await preprocess(source, t);
      paintImage(before, x.data, t.size, t.size, t.mean, t.std);
      const r = await runModel(spec, base, [['float32', x.data, [1, 3, t.size, t.size]]]);
      outputImage(after, r.outputs[0], spec);
      return { text: [`${name}: ${after.width}x${after.height} (${r.ms.toFixed(1)} ms)`,
                      `${name}：${after.width}x${after.height}（${r.ms.toFixed(1)} ms）`],
               result: summary(r) };
    });
  }
}
