// The `inpaint` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import {
  el, tr, frame, holeMask, imageButton, maskImage, outputImage, paintImage, preprocess, runModel, summary,
} from '../kit.mjs';

/** image + user-drawn mask -> image (1 = known pixel, 0 = hole; holes are zeroed) */
export default function mount(root, spec, base) {
  const t = spec.transforms;
  const canvas = el('canvas', { class: 'demo-mask', width: String(t.size), height: String(t.size) });
  const after = el('canvas', { class: 'demo-after' });
  const again = el('button', { type: 'button' }, tr('fill the holes', '填补空洞'));
  let img = null, mask = holeMask(t.size), name = '';
  const paintMasked = () => {
    const masked = maskImage(img.data, mask, t.size);
    paintImage(canvas, masked, t.size, t.size, t.mean, t.std);
  };
  const draw = (ev) => {
    if (!img || !(ev.buttons & 1)) return;
    const rect = canvas.getBoundingClientRect();
    const cx = ((ev.clientX - rect.left) / rect.width) * t.size;
    const cy = ((ev.clientY - rect.top) / rect.height) * t.size;
    const rad = Math.max(1, t.size / 16);
    for (let y = 0; y < t.size; y++) for (let x = 0; x < t.size; x++) {
      if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= rad * rad) mask[y * t.size + x] = 0;
    }
    paintMasked();
  };
  canvas.addEventListener('pointerdown', draw);
  canvas.addEventListener('pointermove', draw);
  const ui = frame(root, {
    samples: (spec.samples || []).map((s) => imageButton(s, base, pick)),
    file: pick,
  });
  root.append(el('div', { class: 'demo-output' }, canvas, after), again,
    el('p', { class: 'meta' }, tr('draw on the left image to add holes, then fill them',
      '在左图上涂画来添加空洞，然后填补它们')));
  again.addEventListener('click', () => img && fill());
  async function pick(source, n) {
    name = n;
    img = null;
    mask = holeMask(t.size);
    return ui.run(name, async () => {
      img = await preprocess(source, t);
      return fillNow();
    });
  }
  function fill() { return ui.run(name, fillNow); }
  async function fillNow() {
    paintMasked();
    const masked = maskImage(img.data, mask, t.size);
    const r = await runModel(spec, base, [
      ['float32', masked, [1, 3, t.size, t.size]],
      ['float32', Float32Array.from(mask), [1, 1, t.size, t.size]],
    ]);
    outputImage(after, r.outputs[0], spec);
    return { text: [`${name}: filled (${r.ms.toFixed(1)} ms)`, `${name}：已填补（${r.ms.toFixed(1)} ms）`],
             result: summary(r) };
  }
}
