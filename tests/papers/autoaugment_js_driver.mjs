// Runs src/sotazoo/site/static/autoaugment.mjs for tests/papers/test_autoaugment_js.py: reads
// {images, policies, cases} as JSON on stdin, writes one result per case as JSON on stdout.
// Images travel as {width, height, rgba: base64 of RGBA bytes}.
import * as aa from '../../src/sotazoo/site/static/autoaugment.mjs';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { images, policies: policyJson, cases } = JSON.parse(Buffer.concat(chunks).toString());

const decode = ({ width, height, rgba }) =>
  ({ width, height, data: new Uint8ClampedArray(Buffer.from(rgba, 'base64')) });
const encode = (img) =>
  Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length).toString('base64');
const imgs = Object.fromEntries(Object.entries(images).map(([k, v]) => [k, decode(v)]));
const policies = aa.loadPolicies(JSON.stringify(policyJson));

const results = cases.map((c) => {
  const other = c.other ? imgs[c.other] : null;
  switch (c.kind) {
    case 'magnitude': return aa.magnitude(c.op, c.level, c.size, c.max_level);
    case 'op': return encode(aa.applyOp(imgs[c.image], c.op, c.value,
      { sign: c.sign, center: c.center, other, fill: c.fill }));
    case 'draws': return encode(aa.augment(imgs[c.image], policies[c.policy], c.draws, { other }));
    case 'js_draws': { // draws made here from a seed, returned for Python to replay
      const random = aa.uniforms(c.seed);
      return Array.from({ length: c.n }, () => {
        const draws = aa.makeDraws(policies[c.policy], random);
        const out = aa.augment(imgs[c.image], policies[c.policy], draws, { other });
        return { draws, image: encode(out) };
      });
    }
    default: throw new Error(`unknown case kind ${c.kind}`);
  }
});
process.stdout.write(JSON.stringify({ ops: aa.OPS, results }));
