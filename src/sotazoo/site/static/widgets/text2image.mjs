// The `text2image` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import { el, tr, frame, outputImage, runModel, seededNormal, summary, textButton, tokenize } from '../kit.mjs';

/** text (+ seeded noise) -> image */
export default function mount(root, spec, base) {
  const out = el('canvas', { class: 'demo-after' });
  const text = el('input', { type: 'text', size: '50', 'aria-label': 'description / 描述',
                             value: spec.examples?.[0] ?? '' });
  const go = el('button', { type: 'button' }, tr('draw it', '画出来'));
  const examples = (spec.examples || []).map((ex) => textButton(ex, () => {
    text.value = ex;
    run();
  }));
  const ui = frame(root, { samples: examples });
  root.append(text, go, el('div', { class: 'demo-output' }, out));
  go.addEventListener('click', run);
  function run() {
    return ui.run(text.value, async () => {
      const ids = tokenize(text.value, spec.vocab, spec.max_len);
      const n = spec.latent_shape.reduce((a, b) => a * b, 1);
      const r = await runModel(spec, base, [
        ['int64', ids, [1, spec.max_len]],
        ['float32', seededNormal(spec.seed ?? 0, n), [1, ...spec.latent_shape]],
      ]);
      outputImage(out, r.outputs[0], spec);
      return { text: [`drawn in ${r.ms.toFixed(1)} ms`, `用时 ${r.ms.toFixed(1)} ms`], result: summary(r) };
    });
  }
}
