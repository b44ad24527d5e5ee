// Headless-Chromium driver for a served sotazoo site: the browser tests and `sotazoo site bench`.
//
// usage: node check.mjs NODE_MODULES BASE_URL [--pages a.html,b.html [--widths 1280,390]]
//                       [--demo PAGE] [--samples N] [--click FX,FY] [--upload FILE
//                       [--upload-click FX,FY]] [--press SELECTOR] [--screenshot PATH]
//                       [--bench MODEL.onnx --shape 1,3,32,32 --reps N]
// Prints one JSON object: per page, console errors, page errors and requests to other hosts;
// for --demo, what the widget computed for each bundled sample (input tensor and logits), and with
// --click, what a click at fractions FX, FY of the attention view showed after each sample; with
// --press, what the demo computed after a click on the element SELECTOR names (after the samples).
import { createRequire } from 'node:module';

const [modules, base, ...rest] = process.argv.slice(2);
const opt = {};
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];
const { chromium } = createRequire(`${modules}/`)('playwright-core');
const origin = new URL(base).origin;
const browser = await chromium.launch({
  executablePath: process.env.SOTAZOO_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const report = { pages: {}, demo: null, bench: null, isolated: null };

async function open(path) {
  const page = await browser.newPage();
  const seen = { console_errors: [], page_errors: [], foreign_requests: [], failed_requests: [] };
  page.on('console', (m) => { if (m.type() === 'error') seen.console_errors.push(m.text()); });
  page.on('pageerror', (e) => seen.page_errors.push(String(e)));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['data:', 'blob:'].includes(u.protocol) && u.origin !== origin) seen.foreign_requests.push(r.url());
  });
  page.on('requestfailed', (r) => seen.failed_requests.push(r.url()));
  page.on('response', (r) => { if (r.status() >= 400) seen.failed_requests.push(`${r.status()} ${r.url()}`); });
  const resp = await page.goto(new URL(path, base).href, { waitUntil: 'networkidle' });
  seen.status = resp.status();
  return { page, seen };
}

for (const path of (opt.pages || '').split(',').filter(Boolean)) {
  const { page, seen } = await open(path);
  seen.title = await page.title();
  if (opt.widths) { // per window width: how far the page scrolls sideways, and what sticks out
    seen.overflow = {};
    for (const w of opt.widths.split(',').map(Number)) {
      await page.setViewportSize({ width: w, height: 900 });
      seen.overflow[w] = await page.evaluate(() => {
        const d = document.documentElement;
        const wide = [...document.body.querySelectorAll('*')]
          .filter((e) => e.getBoundingClientRect().right > d.clientWidth + 1)
          .map((e) => `${e.tagName.toLowerCase()}.${e.className}`).slice(0, 5);
        return { scroll: d.scrollWidth - d.clientWidth, wide };
      });
    }
  }
  report.pages[path] = seen;
  await page.close();
}

if (opt.demo) {
  const { page, seen } = await open(opt.demo);
  report.isolated = await page.evaluate(() => self.crossOriginIsolated);
  await page.waitForSelector('[data-demo][data-state]', { timeout: 30000 });
  const n = Number(opt.samples || 100);
  const buttons = await page.$$('[data-demo] [data-sample]');
  const runs = [];
  for (const b of buttons.slice(0, n)) {
    await b.click();
    await page.waitForFunction(() => {
      const s = document.querySelector('[data-demo]').dataset.state;
      return s === 'done' || s === 'error';
    }, null, { timeout: 60000 });
    runs.push(await page.evaluate(() => {
      const root = document.querySelector('[data-demo]');
      return { state: root.dataset.state, ...(root.result || {}),
               shown: root.querySelector('.demo-status').textContent,
               top1: root.querySelector('.demo-top5 tr:nth-child(2) td')?.textContent };
    }));
    if (opt.click) { // a click at fractions (fx, fy) of the attention view, after each run
      const [fx, fy] = opt.click.split(',').map(Number);
      const view = await page.$('[data-demo] canvas.demo-attention');
      const box = await view.boundingBox();
      await view.click({ position: { x: fx * box.width, y: fy * box.height } });
      runs[runs.length - 1].clicked = await page.evaluate(
        () => document.querySelector('[data-demo]').result.attention_view);
    }
    await page.evaluate(() => { document.querySelector('[data-demo]').dataset.state = 'ready'; });
  }
  const finished = async () => {
    await page.waitForFunction(() => {
      const s = document.querySelector('[data-demo]').dataset.state;
      return s === 'done' || s === 'error';
    }, null, { timeout: 60000 });
    const run = await page.evaluate(() => {
      const root = document.querySelector('[data-demo]');
      return { state: root.dataset.state, ...(root.result || {}),
               shown: root.querySelector('.demo-status').textContent };
    });
    await page.evaluate(() => { document.querySelector('[data-demo]').dataset.state = 'ready'; });
    return run;
  };
  const uploads = [];
  if (opt.upload) { // a file of the reader's, through the file input; then a click on its thumbnail
    await (await page.$('[data-demo] input[type="file"]')).setInputFiles(opt.upload);
    uploads.push(await finished());
    if (opt['upload-click']) {
      const [fx, fy] = opt['upload-click'].split(',').map(Number);
      const loc = await page.$('[data-demo] canvas.demo-locator');
      const box = await loc.boundingBox();
      await loc.click({ position: { x: fx * box.width, y: fy * box.height } });
      uploads.push(await finished());
    }
  }
  const pressed = [];
  if (opt.press) { // a control of the widget (a "new random style" button, a person A)
    await (await page.$(`[data-demo] ${opt.press}`)).click();
    pressed.push(await finished());
  }
  if (opt.screenshot) await page.screenshot({ path: opt.screenshot, fullPage: true });
  report.demo = { page: opt.demo, runs, uploads, pressed, ...seen };
  await page.close();
}

if (opt.bench) {
  // Latency of one ONNX file in onnxruntime-web (wasm): 10 warm-up runs, then `reps` timed runs
  // of the same constant input, timed inside the page with performance.now().
  const { page } = await open('index.html');
  report.bench = await page.evaluate(async ({ onnx, shape, reps, threads }) => {
    const rt = await import(new URL('static/sotazoo.mjs', location.href).href);
    const ort = await rt.loadOrt();
    if (threads) ort.env.wasm.numThreads = threads; // before the page's first session
    const sess = await ort.InferenceSession.create(new URL(onnx, location.href).href,
      { executionProviders: ['wasm'] });
    const n = shape.reduce((a, b) => a * b, 1);
    const x = new ort.Tensor('float32', new Float32Array(n).fill(0.5), shape);
    const feeds = { [sess.inputNames[0]]: x };
    for (let i = 0; i < 10; i++) await sess.run(feeds);
    const times = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await sess.run(feeds);
      times.push(performance.now() - t0);
    }
    return { times, threads: ort.env.wasm.numThreads, isolated: self.crossOriginIsolated };
  }, { onnx: opt.bench, shape: opt.shape.split(',').map(Number), reps: Number(opt.reps || 50),
       threads: Number(opt.threads || 0) });
  await page.close();
}

await browser.close();
console.log(JSON.stringify(report));
