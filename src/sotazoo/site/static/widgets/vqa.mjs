// The `vqa` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import {
  el, frame, tr, imageButton, paintImage, preprocess, runModel, softmax, summary, tokenize,
} from '../kit.mjs';

/** image + question -> answer. Questions are words (`vocab`, `max_len`) or, with
 *  `question_format: "sort_of_clevr"`, a colour and a question type coded as 11 bits. */
export default function mount(root, spec, base) {
  const t = spec.transforms;
  const soc = spec.question_format === 'sort_of_clevr';
  const text = el('input', { type: 'text', size: '50', 'aria-label': 'question / 问题',
                             value: spec.examples?.[0] ?? '' });
  const colour = el('select', { 'aria-label': 'colour / 颜色' },
    ...(spec.colours || []).map((c, i) => el('option', { value: String(i) }, c)));
  const kind = el('select', { 'aria-label': 'question / 问题' },
    ...(spec.question_types || []).map((q, i) => el('option', { value: String(i) },
      q.replace('{colour}', '…'))));
  const ask = el('button', { type: 'button' }, tr('ask', '提问'));
  const preview = el('canvas', { class: 'demo-preview' });
  const table = el('table', { class: 'demo-top5' });
  const truth = el('p', { class: 'meta' });
  let current = null;
  const ui = frame(root, {
    samples: (spec.samples || []).map((s) => imageButton(s, base, run)),
    file: run,
  });
  root.append(...(soc ? [colour, kind] : [text]), ask,
    el('div', { class: 'demo-output' }, preview, table), truth);
  ask.addEventListener('click', () => current && run(...current));
  const question = () => {
    if (!soc) return ['int64', tokenize(text.value, spec.vocab, spec.max_len), [1, spec.max_len]];
    const q = new Float32Array(11);
    const k = Number(kind.value); // 0-2 non-relational, 3-5 relational
    q[Number(colour.value)] = 1;
    q[6 + (k >= 3 ? 1 : 0)] = 1;
    q[8 + (k % 3)] = 1;
    return ['float32', q, [1, 11]];
  };
  const asked = () => (soc
    ? spec.question_types[Number(kind.value)].replace('{colour}', spec.colours[Number(colour.value)])
    : text.value);
  function run(source, name) {
    current = [source, name];
    return ui.run(name, async () => {
      const x = await preprocess(source, t);
      paintImage(preview, x.data, t.size, t.size, t.mean, t.std);
      const r = await runModel(spec, base, [['float32', x.data, [1, 3, t.size, t.size]], question()]);
      const probs = softmax(Array.from(r.outputs[0].data));
      const top = probs.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]).slice(0, 3);
      table.replaceChildren(el('tr', {}, el('th', {}, tr('answer', '答案')), el('th', {}, tr('confidence', '置信度'))),
        ...top.map(([p, i]) => el('tr', {}, el('td', {}, spec.answers[i]),
          el('td', {}, `${(100 * p).toFixed(1)}%`))));
      const sample = (spec.samples || []).find((s) => s.name === name);
      const key = `${colour.value},${kind.value}`;
      truth.replaceChildren(soc && sample?.answers
        ? tr(`${asked()} — correct answer: ${sample.answers[key]}`, `${asked()} —— 正确答案：${sample.answers[key]}`)
        : asked());
      return { text: `${spec.answers[top[0][1]]} (${(100 * top[0][0]).toFixed(1)}%)`,
               result: summary(r) };
    });
  }
}
