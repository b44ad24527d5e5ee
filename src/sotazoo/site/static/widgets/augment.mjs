// The `augment` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
// A policy of image operations (AutoAugment's, static/autoaugment.mjs) applied in the page to an
// image the reader picks: each click draws one sub-policy and its random choices again.
import { centerCropSquare, decodeImage, el, frame, imageButton, resizeBilinear, tr } from '../kit.mjs';
import { augment, loadPolicies, makeDraws, uniforms } from '../autoaugment.mjs';

const MAX_SIDE = 256; // a reader's photo is cropped square and brought down to this side

/** {width, height, data: RGBA bytes} from kit's decoded image (planar floats in [0, 1], which
 *  are bytes / 255 exactly: rounding recovers them) */
function toRgba(img) {
  const n = img.width * img.height;
  const data = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) data[4 * i + c] = Math.round(255 * img.data[c * n + i]);
    data[4 * i + 3] = 255;
  }
  return { width: img.width, height: img.height, data };
}

function paint(canvas, img) {
  canvas.width = img.width;
  canvas.height = img.height;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
}

/** image -> one random sub-policy of the chosen policy applied to it, re-drawn on each click */
export default function mount(root, spec, base) {
  const policies = loadPolicies(spec.policies);
  // both at the size of the demo's output canvases (site.css .demo-after), side by side
  const before = el('canvas', { class: 'demo-after', title: 'your image / 原图' });
  const after = el('canvas', { class: 'demo-after', title: 'augmented / 增强后' });
  const choose = el('select', { 'aria-label': 'policy / 策略' },
    ...Object.keys(policies).map((p) => el('option', { value: p }, p)));
  choose.value = spec.policy in policies ? spec.policy : Object.keys(policies)[0];
  const again = el('button', { type: 'button' }, tr('draw again', '重新抽取'));
  const ops = el('ol', { class: 'demo-ops' });
  let image = null, name = '', draws = 0; // the picked image; how many draws so far (the seed)
  const ui = frame(root, {
    samples: (spec.samples || []).map((s) => imageButton(s, base, pick)),
    file: pick,
  });
  root.append(el('label', {}, tr('policy ', '策略 '), choose), again,
    el('div', { class: 'demo-output' }, before, after), ops);
  again.addEventListener('click', () => image && draw());
  choose.addEventListener('change', () => image && draw());

  function pick(source, label) {
    return ui.run(label, async () => {
      let img = await decodeImage(source);
      if (Math.max(img.width, img.height) > MAX_SIDE) img = resizeBilinear(centerCropSquare(img), MAX_SIDE);
      image = toRgba(img);
      name = label;
      paint(before, image);
      return apply();
    });
  }

  function draw() {
    return ui.run(name, async () => apply());
  }

  function apply() {
    const policy = policies[choose.value];
    const seed = draws++;
    const d = makeDraws(policy, uniforms(seed));
    const t0 = performance.now();
    const out = augment(image, policy, d, { fill: spec.fill });
    const ms = performance.now() - t0;
    paint(after, out);
    const sub = policy[d.index];
    ops.replaceChildren(...sub.map(([op, p, level], i) => el('li', {},
      `${op} (p ${p}, bin ${level}): `, d.apply[i] ? tr('ran', '执行') : tr('skipped', '跳过'))));
    const ran = sub.filter((_, i) => d.apply[i]).map(([op]) => op);
    return {
      text: [`${name}: ${choose.value} sub-policy ${d.index + 1} of ${policy.length}, ` +
             `${ran.length ? ran.join(' + ') : 'no op ran'} (${ms.toFixed(1)} ms)`,
             `${name}：${choose.value} 第 ${d.index + 1}/${policy.length} 个子策略，` +
             `${ran.length ? ran.join(' + ') : '没有执行任何操作'}（${ms.toFixed(1)} ms）`],
      result: { policy: choose.value, seed, draws: d, width: out.width, height: out.height,
                input: Array.from(image.data), output: Array.from(out.data), ms },
    };
  }
}
