// The `image2image` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import {
  decodeImage, el, frame, imageButton, normalize, outputImage, paintImage, preprocess, runModel,
  summary, tr,
} from '../kit.mjs';

/** A size x size crop of a decoded (3, H, W) image at its own resolution, its top-left corner at
 *  (left, top) clamped into the image: a photo is not shrunk (and aliased) to the model's input. */
export function cropAt(img, left, top, size) {
  const x0 = Math.max(0, Math.min(img.width - size, Math.round(left)));
  const y0 = Math.max(0, Math.min(img.height - size, Math.round(top)));
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < size; y++) {
      const src = c * img.height * img.width + (y0 + y) * img.width + x0;
      out.set(img.data.subarray(src, src + size), c * size * size + y * size);
    }
  }
  return { data: out, height: size, width: size, left: x0, top: y0 };
}

/** image -> image, shown with a before/after slider. A bundled sample is the model's input as
 *  is; a larger image of yours is cropped at its own resolution where you click on its
 *  thumbnail (the centre at first). */
export default function mount(root, spec, base) {
  const t = spec.transforms;
  const before = el('canvas', { class: 'demo-before' });
  const after = el('canvas', { class: 'demo-after' });
  const divider = el('div', { class: 'demo-divider', 'aria-hidden': 'true' });
  const slider = el('input', { type: 'range', min: '0', max: '100', value: '50',
                               'aria-label': 'before / after · 处理前 / 处理后' });
  const stack = el('div', { class: 'demo-compare' }, before, after, divider);
  const show = () => {
    after.style.clipPath = `inset(0 0 0 ${slider.value}%)`;
    divider.style.left = `${slider.value}%`;
  };
  slider.addEventListener('input', show);
  show();
  const locator = el('canvas', { class: 'demo-locator', hidden: '',
                                 title: 'click to move the crop / 点击移动裁取区域' });
  const ui = frame(root, {
    samples: (spec.samples || []).map((s) => imageButton(s, base, run)),
    file: run,
  });
  root.append(el('div', { class: 'demo-output' }, stack, locator), slider,
    el('p', { class: 'meta' }, tr('left of the line: the input, scaled by the browser; right: the model',
      '分界线左边：输入图像（由浏览器放大）；右边：模型的输出')));
  let photo = null; // a decoded image larger than the input, and where its crop is
  locator.addEventListener('click', (ev) => {
    if (!photo) return;
    const r = locator.getBoundingClientRect();
    const k = photo.img.width / r.width;
    photo.left = (ev.clientX - r.left) * k - t.size / 2;
    photo.top = (ev.clientY - r.top) * k - t.size / 2;
    infer(photo.name, () => crop());
  });
  function crop() {
    const c = cropAt(photo.img, photo.left, photo.top, t.size);
    photo.left = c.left;
    photo.top = c.top;
    drawLocator();
    return normalize(c, t.mean, t.std);
  }
  function drawLocator() {
    const { img } = photo;
    const k = Math.min(1, 160 / Math.max(img.width, img.height));
    locator.width = Math.round(img.width * k);
    locator.height = Math.round(img.height * k);
    const full = el('canvas');
    paintImage(full, img.data, img.height, img.width);
    const ctx = locator.getContext('2d');
    ctx.drawImage(full, 0, 0, locator.width, locator.height);
    ctx.strokeStyle = '#ff3b30';
    ctx.lineWidth = 2;
    ctx.strokeRect(photo.left * k, photo.top * k, t.size * k, t.size * k);
    locator.hidden = false;
  }
  function infer(name, input) {
    return ui.run(name, async () => {
      const x = await input();
      paintImage(before, x.data, t.size, t.size, t.mean, t.std);
      const r = await runModel(spec, base, [['float32', x.data, [1, 3, t.size, t.size]]]);
      outputImage(after, r.outputs[0], spec);
      const where = photo ? ` @ (${photo.left}, ${photo.top})` : '';
      return { text: [`${name}${where}: ${after.width}x${after.height} (${r.ms.toFixed(1)} ms)`,
                      `${name}${where}：${after.width}x${after.height}（${r.ms.toFixed(1)} ms）`],
               result: { ...summary(r), crop: photo ? [photo.left, photo.top] : null } };
    });
  }
  function run(source, name) {
    return infer(name, async () => {
      // a bundled sample (a URL) is the model's input, pre-processed as Python does
      const img = typeof source === 'string' ? null : await decodeImage(source);
      if (!img || img.width <= t.size || img.height <= t.size) { // small: the usual pre-processing
        photo = null;
        locator.hidden = true;
        return preprocess(source, t);
      }
      photo = { img, name, left: (img.width - t.size) / 2, top: (img.height - t.size) / 2 };
      return crop();
    });
  }
}
