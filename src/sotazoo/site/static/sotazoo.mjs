// sotazoo's site runtime: the zh/en switch, and the demo of a page.
//
// Every demo reads its spec (models/<name>.json, written by `sotazoo site build`) and runs the
// exported ONNX file with onnxruntime-web's wasm backend, served from this site (no CDN). The
// widget of a demo kind is its own module, static/widgets/<kind>.mjs, loaded when a page has such
// a demo: a new kind is a new file there (and its name in cards.DEMO_KINDS), nothing else. The
// kit the widgets share (pre-processing that mirrors src/sotazoo/transforms.py, sessions, the
// common frame) is kit.mjs, re-exported here for the tests and pages that import this module.

import { el } from './kit.mjs';

export * from './kit.mjs';

// ---------------------------------------------------------------- language switch

export function setLang(lang) {
  document.documentElement.dataset.lang = lang;
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const b of document.querySelectorAll('[data-set-lang]')) {
    b.setAttribute('aria-pressed', String(b.dataset.setLang === lang));
  }
  try { localStorage.setItem('sotazoo-lang', lang); } catch { /* storage may be off */ }
}

function initLang() {
  const fromUrl = new URLSearchParams(location.search).get('lang');
  let stored = null;
  try { stored = localStorage.getItem('sotazoo-lang'); } catch { /* ignore */ }
  setLang(fromUrl === 'zh' || fromUrl === 'en' ? fromUrl : stored === 'zh' ? 'zh' : 'en');
  for (const b of document.querySelectorAll('[data-set-lang]')) {
    b.addEventListener('click', () => setLang(b.dataset.setLang));
  }
}

// ---------------------------------------------------------------- demos

export async function mountDemo(root) {
  const specUrl = new URL(root.dataset.spec, location.href);
  try {
    const r = await fetch(specUrl);
    if (!r.ok) throw new Error(`demo spec ${specUrl.pathname} is missing (HTTP ${r.status})`);
    const spec = await r.json();
    if (!/^[a-z0-9]+$/.test(String(spec.kind))) throw new Error(`bad demo kind '${spec.kind}'`);
    let widget;
    try {
      widget = (await import(`./widgets/${spec.kind}.mjs`)).default;
    } catch {
      throw new Error(`this site has no widget for demo kind '${spec.kind}'`);
    }
    widget(root, spec, specUrl);
    root.dataset.state = 'ready';
  } catch (e) {
    root.append(el('p', { class: 'demo-error', role: 'alert' }, String(e.message || e)));
    root.dataset.state = 'error';
  }
}

initLang();
for (const root of document.querySelectorAll('[data-demo]')) mountDemo(root);
