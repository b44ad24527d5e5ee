// The `generate` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import {
  attentionView, el, frame, tr, outputImage, runModel, seededNormal, summary, textButton,
} from '../kit.mjs';

/** noise (+ class) + seed -> image; with spec.attention and a second output (an attention
 *  map), a click on the enlarged image shows where the clicked pixel looks */
export default function mount(root, spec, base) {
  const out = el('canvas', { class: 'demo-after' });
  const seed = el('input', { type: 'number', value: '0', min: '0', 'aria-label': 'seed / 种子' });
  const cls = el('select', { 'aria-label': 'class / 类别' },
    ...(spec.labels || []).map((l, i) => el('option', { value: String(i) }, l)));
  const go = el('button', { type: 'button' }, tr('generate', '生成'));
  const seeds = (spec.samples || []).map((s) => textButton(s.name, () => {
    seed.value = String(s.seed);
    if (s.label !== undefined && spec.labels?.length) cls.value = String(s.label);
    run();
  }));
  const ui = frame(root, { samples: seeds });
  const looks = spec.attention ? attentionView(root, spec) : null;
  root.append(el('label', {}, tr('seed ', '种子 '), seed), spec.labels?.length ? cls : '', go,
    el('div', { class: 'demo-output' }, out, ...(looks ? looks.nodes : [])));
  go.addEventListener('click', run);
  function run() {
    const s = Number(seed.value) >>> 0;
    return ui.run(`seed ${s}`, async () => {
      const n = spec.latent_shape.reduce((a, b) => a * b, 1);
      const feeds = [['float32', seededNormal(s, n), [1, ...spec.latent_shape]]];
      if (spec.labels?.length) feeds.push(['int64', BigInt64Array.from([BigInt(cls.value)]), [1]]);
      const r = await runModel(spec, base, feeds);
      outputImage(out, r.outputs[0], spec);
      if (looks && r.outputs.length > 1) looks.update(out, r.outputs[1]);
      return { text: [`seed ${s}: ${out.width}x${out.height} (${r.ms.toFixed(1)} ms)`,
                      `种子 ${s}：${out.width}x${out.height}（${r.ms.toFixed(1)} ms）`],
               result: summary(r) };
    });
  }
}
