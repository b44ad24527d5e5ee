// The `stylize` demo widget (cards.DEMO_KINDS): mounted by sotazoo.mjs for a spec of this kind.
import {
  el, frame, imageButton, outputImage, paintImage, preprocess, runModel, seededNormal, summary, tr,
} from '../kit.mjs';

/** content image + style image -> stylised images. The exported graph takes (content, style),
 *  both pre-processed as Python does (`spec.transforms`), and returns one image per output
 *  (`spec.outputs`: [{name, en, zh}], in the graph's order: an arbitrary-style network that uses
 *  the style, a per-style one that ignores it, ...). Content samples are the demo's samples;
 *  the style is one of `spec.styles` (the first at first) or a file of the reader's. With
 *  `spec.latent` ({name, shape, seed}) the graph takes a third input, a random style code drawn
 *  by `seededNormal` from a seed (spec.latent.seed at first, the next one on each click of
 *  "new random style"), for a network that also samples styles (MUNIT). */
export default function mount(root, spec, base) {
  const t = spec.transforms;
  const styles = spec.styles || [];
  const outs = spec.outputs || [];
  const contentView = el('canvas', { class: 'demo-before' });
  const styleView = el('canvas', { class: 'demo-style-view' });
  const views = outs.map(() => el('canvas', { class: 'demo-after' }));
  let content = null, contentName = '', style = null, styleName = '';
  const latent = spec.latent || null;
  let seed = latent ? latent.seed : 0;
  const ui = frame(root, {
    samples: (spec.samples || []).map((s) => imageButton(s, base, pickContent)),
    file: pickContent,
  });
  const styleButtons = styles.map((s) => {
    const b = imageButton(s, base, pickStyle);
    b.removeAttribute('data-sample'); // the samples the checks click are the contents
    b.setAttribute('data-style', s.name);
    return b;
  });
  const styleFile = el('input', { type: 'file', accept: 'image/*', 'aria-label': 'your own style / 你自己的风格图' });
  styleFile.addEventListener('change', () => styleFile.files[0] && pickStyle(styleFile.files[0], styleFile.files[0].name));
  const reroll = latent ? el('button', { type: 'button', class: 'demo-reroll' },
    tr('new random style', '换一个随机风格')) : '';
  if (latent) {
    reroll.addEventListener('click', () => {
      seed += 1;
      if (content) ui.run(`seed ${seed}`, stylise);
    });
  }
  const figure = (canvas, en, zh) => el('figure', {}, canvas, el('figcaption', {}, tr(en, zh)));
  root.append(
    el('div', { class: 'demo-styles' }, tr('style: ', '风格：'), ...styleButtons,
      el('label', { class: 'demo-file' }, tr(' or your own: ', ' 或上传：'), styleFile), reroll),
    el('div', { class: 'demo-output' }, figure(contentView, 'content', '内容'), figure(styleView, 'style', '风格'),
      ...views.map((v, i) => figure(v, outs[i].en, outs[i].zh))),
  );
  async function loadStyle() {
    if (!style && styles.length) {
      styleName = styles[0].name;
      style = await preprocess(new URL(styles[0].src, base).href, t);
    }
  }
  function pickContent(source, name) {
    contentName = name;
    return ui.run(name, async () => {
      content = await preprocess(source, t);
      await loadStyle();
      return stylise();
    });
  }
  function pickStyle(source, name) {
    return ui.run(name, async () => {
      style = await preprocess(source, t);
      styleName = name;
      if (!content) return { text: [`style: ${name}`, `风格：${name}`], result: {} };
      return stylise();
    });
  }
  async function stylise() {
    if (!style) throw new Error('no style image: pick one');
    paintImage(contentView, content.data, t.size, t.size, t.mean, t.std);
    paintImage(styleView, style.data, t.size, t.size, t.mean, t.std);
    const dims = [1, 3, t.size, t.size];
    const feeds = [['float32', content.data, dims], ['float32', style.data, dims]];
    if (latent) {
      const n = latent.shape.reduce((a, b) => a * b, 1);
      feeds.push(['float32', seededNormal(seed, n), [1, ...latent.shape]]);
    }
    const r = await runModel(spec, base, feeds);
    r.outputs.forEach((o, i) => views[i] && outputImage(views[i], o, spec));
    const random = latent ? [`, random style of seed ${seed}`, `，随机风格种子 ${seed}`] : ['', ''];
    return { text: [`${contentName} in the style of ${styleName}${random[0]} (${r.ms.toFixed(1)} ms)`,
                    `${contentName}，${styleName} 的风格${random[1]}（${r.ms.toFixed(1)} ms）`],
             result: { ...summary(r), style: styleName, ...(latent ? { seed } : {}) } };
  }
}
