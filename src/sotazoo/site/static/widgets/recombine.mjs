// The `recombine` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import { el, frame, imageButton, outputImage, runModel, summary, tr } from '../kit.mjs';

/** Two of the demo's samples, A and B, taken apart into factors and put back together. The
 *  exported graph holds the samples' inputs (in `spec.samples`' order) and takes `pick` (K, F)
 *  int64: row k names, for each factor of `spec.factors` ([{name, en, zh}], the columns), the
 *  sample it comes from; it returns K images (K, 3, H, W), scaled back by `spec.output`. The rows
 *  asked for are A, B, then A with each factor of B in turn (papers/disentangled_person/demo.py:
 *  `pick_rows`). A click on a sample makes it B; the row above picks A. */
export default function mount(root, spec, base) {
  const factors = spec.factors || [];
  const [h, w] = spec.image_size;
  const samples = spec.samples || [];
  let a = 0, b = Math.min(1, samples.length - 1);
  const sized = (button) => {
    const img = button.querySelector('img');
    img.setAttribute('height', '48');
    img.setAttribute('width', String(Math.round((48 * w) / h)));
    return button;
  };
  const ui = frame(root, { samples: samples.map((s, i) => sized(imageButton(s, base, () => { b = i; return run(); }))) });
  const chooseA = samples.map((s, i) => {
    const button = sized(imageButton(s, base, () => { a = i; return run(); }));
    button.removeAttribute('data-sample'); // the samples the checks click are B's
    button.setAttribute('data-person-a', s.name);
    return button;
  });
  const captions = [
    ['A', 'A'], ['B', 'B'],
    ...factors.map((f) => [`A with B's ${f.en}`, `A 换上 B 的${f.zh}`]),
  ];
  // sized as the images from the start: a blank canvas is 300x150, far wider than a person
  const views = captions.map(() => el('canvas', { class: 'demo-person', width: String(w), height: String(h) }));
  root.prepend(el('div', { class: 'demo-persons-a' }, tr('person A: ', '人物 A：'), ...chooseA));
  root.querySelector('.demo-samples').prepend(tr('person B: ', '人物 B：'));
  root.append(el('div', { class: 'demo-output demo-recombine' },
    ...views.map((v, i) => el('figure', {}, v, el('figcaption', {}, tr(...captions[i]))))));

  function rows() {
    const out = [factors.map(() => a), factors.map(() => b)];
    factors.forEach((_, i) => out.push(factors.map((__, j) => (j === i ? b : a))));
    return out;
  }
  function run() {
    const name = `${samples[a].name} + ${samples[b].name}`;
    return ui.run(name, async () => {
      const picks = rows();
      const data = BigInt64Array.from(picks.flat().map((v) => BigInt(v)));
      const r = await runModel(spec, base, [['int64', data, [picks.length, factors.length]]]);
      const out = r.outputs[0];
      const plane = 3 * h * w;
      views.forEach((v, k) => outputImage(v, { dims: [1, 3, h, w], data: out.data.subarray(k * plane, (k + 1) * plane) }, spec));
      return { text: [`A = ${samples[a].name}, B = ${samples[b].name} (${r.ms.toFixed(1)} ms)`,
                      `A = ${samples[a].name}，B = ${samples[b].name}（${r.ms.toFixed(1)} ms）`],
               result: { ...summary(r), a, b } };
    });
  }
}
