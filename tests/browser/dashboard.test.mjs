// The dashboard end to end: the real kiln binary serving the trunk build it carries (or the
// folder KILN_UI names), driven in headless Chromium through its accessibility tree (labels,
// roles), with a screenshot per step.
//   KILN_BIN=target/release/kiln node tests/browser/dashboard.test.mjs
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { createServer } from 'node:net';
import { execFileSync } from 'node:child_process';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const kiln = resolve(root, process.env.KILN_BIN ?? 'target/release/kiln');
const ui = process.env.KILN_UI ? ['--ui', resolve(root, process.env.KILN_UI)] : [];
const fixture = resolve(root, '../shared/fixtures/tiny-llama-f16.gguf');
// A Hugging Face safetensors folder (scripts/hf-fixtures): config, tokenizer, one shard.
const hfFolder = resolve(root, 'target/fixtures/hf/qwen3/model');
// gemma3-270m F16 (made by the Python tests' recipe and cached in target/) and its importance matrix.
const gemma = resolve(root, 'target/fixtures/gemma3-270m-f16.gguf');
const imatrixDat = resolve(root, '../shared/fixtures/imatrix/gemma3-270m-gpl3.imatrix.dat');
const shots = resolve(root, 'target/screenshots');
mkdirSync(shots, { recursive: true });

const store = mkdtempSync(join(tmpdir(), 'kiln-ui-'));
const server = spawn(kiln, ['serve', '--host', '127.0.0.1:0', '--models', store, ...ui], {
  stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, KILN_LOG: 'warn' },
});
const url = await new Promise((ok, fail) => {
  createInterface({ input: server.stdout }).once('line', (l) => ok('http://' + l.split(' ').pop()));
  server.once('exit', (c) => fail(new Error(`kiln exited ${c}`)));
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const problems = [];
page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
page.on('console', (m) => {
  // Failed loads are judged by the response check below; a HEAD for a missing blob is a 404 by design.
  if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
});
page.on('response', (r) => {
  const expected = (r.request().method() === 'HEAD' && r.url().includes('/api/blobs/') && r.status() === 404)
    // The deliberate pull of a name the registry lacks.
    || (r.url().endsWith('/api/pull') && (r.request().postData() ?? '').includes('kiln/absent:none'));
  if (r.status() >= 400 && !expected) problems.push(`${r.request().method()} ${r.url()}: ${r.status()}`);
});
const creates = [];
page.on('request', (r) => { if (r.url().endsWith('/api/create')) creates.push(r.postData()); });
const blobPosts = [];
page.on('request', (r) => { if (r.method() === 'POST' && r.url().includes('/api/blobs/')) blobPosts.push(r.url()); });

let passed = 0, failed = 0;
async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
  }
  await page.screenshot({ path: join(shots, `${String(passed + failed).padStart(2, '0')}-${name.replace(/\W+/g, '-')}.png`), fullPage: true });
}
function expect(cond, msg) { if (!cond) throw new Error(msg); }

await step('opening / lands on the dashboard', async () => {
  await page.goto(url + '/');
  expect(page.url() === url + '/ui/', `landed on ${page.url()}`);
  await page.getByRole('heading', { name: 'Create a model' }).waitFor();
  await page.getByRole('table', { name: 'Models' }).waitFor();
  expect(await page.evaluate(() => typeof window.wasmBindings?.validate_create_request) === 'function', 'JS API missing');
  const v = await page.evaluate(() => window.wasmBindings.validate_create_request({ model: '../x', from: 'a' }));
  expect(v.ok === false && v.error === 'invalid model name', JSON.stringify(v));
});

await step('a bad name shows an alert and sends nothing', async () => {
  await page.getByLabel('Model name').fill('bad name!');
  const alert = page.getByRole('alert').filter({ hasText: 'invalid model name' });
  await alert.waitFor();
  const create = page.getByRole('button', { name: 'Create', exact: true });
  expect(await create.isDisabled(), 'Create should be disabled');
  await create.click({ force: true }).catch(() => {});
  await page.waitForTimeout(300);
  expect(creates.length === 0, `a create request was sent: ${creates}`);
});

await step('a Modelfile error points at its line, a good one fills the form', async () => {
  await page.getByText('Paste Modelfile').click();
  await page.getByLabel('Modelfile', { exact: true }).fill('FROM x\nPARAMETER tempurature 1\n');
  await page.getByRole('button', { name: 'Fill the form' }).click();
  await page.getByRole('alert').filter({ hasText: 'line 2, column 11' }).waitFor();
  await page.getByLabel('Modelfile', { exact: true }).fill('SYSTEM You are a tiny llama.\nPARAMETER temperature 0.5\n');
  await page.getByRole('button', { name: 'Fill the form' }).click();
  expect(await page.getByLabel('System prompt').inputValue() === 'You are a tiny llama.', 'system prompt not filled');
  expect(await page.getByLabel('Parameter 1 value').inputValue() === '0.5', 'parameter not filled');
});

await step('upload the GGUF and create with q4_K_M while the bars move to success', async () => {
  await page.getByLabel('Model name').fill('tiny-q4');
  await page.getByLabel('GGUF file').setInputFiles(fixture);
  await page.getByLabel('Quantize').selectOption('Q4_K_M');
  const create = page.getByRole('button', { name: 'Create', exact: true });
  await create.waitFor({ state: 'visible' });
  expect(!(await create.isDisabled()), 'Create should be enabled: ' + (await page.getByRole('alert').allTextContents()));
  await create.click();
  await page.getByRole('status').filter({ hasText: 'created tiny-q4' }).waitFor({ timeout: 60000 });
  const bars = page.getByRole('progressbar');
  expect(await bars.count() >= 2, `expected upload and quantize bars, got ${await bars.count()}`);
  for (const b of await bars.all()) {
    const [now, max] = [await b.getAttribute('aria-valuenow'), await b.getAttribute('aria-valuemax')];
    expect(Number(max) > 0 && now === max, `bar ${await b.getAttribute('aria-label')} at ${now}/${max}`);
  }
  const log = await page.getByRole('list', { name: 'Status log' }).innerText();
  expect(log.includes('quantizing F16 model to Q4_K_M') && log.includes('success'), log);
  expect(creates.length === 1 && JSON.parse(creates[0]).quantize === 'Q4_K_M', `creates: ${creates}`);
});

await step('the model appears in the table', async () => {
  const row = page.getByRole('row').filter({ hasText: 'tiny-q4:latest' });
  await row.waitFor();
  expect((await row.innerText()).includes('Q4_K_M'), await row.innerText());
  await page.getByRole('button', { name: 'Details of tiny-q4:latest' }).click();
  await page.getByRole('region', { name: 'Details of tiny-q4:latest' }).getByText('You are a tiny llama.').waitFor();
});

await step('delete it after confirming', async () => {
  await page.getByRole('button', { name: 'Delete tiny-q4:latest' }).click();
  await page.getByRole('button', { name: 'Confirm delete' }).click();
  await page.getByRole('row').filter({ hasText: 'tiny-q4:latest' }).waitFor({ state: 'detached' });
});

await step('a folder of an unsupported architecture is refused before any upload', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'kiln-ui-hf-')), 'falcon');
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['FalconForCausalLM'] }));
  writeFileSync(join(dir, 'model.safetensors'), Buffer.alloc(64));
  writeFileSync(join(dir, 'tokenizer.json'), '{}');
  const [posts, sent] = [blobPosts.length, creates.length];
  await page.getByLabel('Model name').fill('falcon');
  await page.getByLabel('Model folder').setInputFiles(dir);
  const alert = page.getByRole('alert').filter({ hasText: 'FalconForCausalLM' });
  await alert.waitFor();
  const text = await alert.innerText();
  for (const arch of ['LlamaForCausalLM', 'Qwen3ForCausalLM', 'Gemma3ForCausalLM']) expect(text.includes(arch), `no ${arch} in: ${text}`);
  const create = page.getByRole('button', { name: 'Create', exact: true });
  expect(await create.isDisabled(), 'Create should be disabled');
  await create.click({ force: true }).catch(() => {});
  await page.waitForTimeout(300);
  expect(blobPosts.length === posts && creates.length === sent, `sent: ${blobPosts.slice(posts)} ${creates.slice(sent)}`);
  rmSync(dirname(dir), { recursive: true, force: true });
});

await step('a model folder is hashed and its blobs uploaded before the create goes out', async () => {
  const digests = Object.fromEntries(readdirSync(hfFolder).sort().map((f) =>
    [f, 'sha256:' + createHash('sha256').update(readFileSync(join(hfFolder, f))).digest('hex')]));
  for (const d of Object.values(digests)) {
    expect((await fetch(`${url}/api/blobs/${d}`, { method: 'HEAD' })).status === 404, `${d} is there already`);
  }
  const sent = creates.length;
  await page.getByLabel('Model name').fill('qwen3-hf');
  await page.getByLabel('Quantize').selectOption('');
  await page.getByLabel('Model folder').setInputFiles(hfFolder);
  const create = page.getByRole('button', { name: 'Create', exact: true });
  await page.waitForFunction(() => !document.querySelector('#source-error'));
  expect(!(await create.isDisabled()), 'Create should be enabled: ' + (await page.getByRole('alert').allTextContents()));
  await create.click();
  for (let i = 0; i < 600 && creates.length === sent; i++) await page.waitForTimeout(100);
  expect(creates.length === sent + 1, 'no create request went out');
  const req = JSON.parse(creates[sent]);
  expect(JSON.stringify(req.files) === JSON.stringify(digests), `files: ${JSON.stringify(req.files)}`);
  for (const d of Object.values(digests)) {
    expect((await fetch(`${url}/api/blobs/${d}`, { method: 'HEAD' })).status === 200, `${d} not uploaded`);
  }
  const lines = await page.getByRole('list', { name: 'Files' }).getByRole('listitem').allInnerTexts();
  expect(lines.length === 5 && lines.every((l) => l.endsWith('uploaded')), lines.join('\n'));
  const hashing = await page.locator('.bar').filter({ hasText: 'hashing 5 files' }).locator('.bar-figures').innerText();
  console.log(`     hashing the qwen3 folder in the worker: ${hashing}`);
});

await step('the folder makes a model', async () => {
  const outcome = page.locator('.progress').getByRole('status').or(page.locator('.progress').getByRole('alert'));
  await outcome.first().waitFor({ timeout: 120000 });
  const text = await outcome.first().innerText();
  expect(text === 'created qwen3-hf', `the create ended with: ${text}`);
  await page.getByRole('row').filter({ hasText: 'qwen3-hf:latest' }).waitFor();
});

await step('the same folder again uploads nothing', async () => {
  const [posts, sent] = [blobPosts.length, creates.length];
  await page.getByLabel('Model folder').setInputFiles(hfFolder);
  await page.waitForFunction(() => !document.querySelector('#source-error'));
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  for (let i = 0; i < 600 && creates.length === sent; i++) await page.waitForTimeout(100);
  expect(creates.length === sent + 1, 'no create request went out');
  const lines = await page.getByRole('list', { name: 'Files' }).getByRole('listitem').allInnerTexts();
  expect(lines.length === 5 && lines.every((l) => l.endsWith('already on the server')), lines.join('\n'));
  expect(blobPosts.length === posts, `uploaded again: ${blobPosts.slice(posts)}`);
  await page.locator('.progress').getByRole('status').or(page.locator('.progress').getByRole('alert')).first().waitFor();
});

await step('the quantize list groups every type and marks those that need an importance matrix', async () => {
  const groups = await page.locator('#quantize optgroup').evaluateAll((gs) => gs.map((g) => g.label));
  expect(JSON.stringify(groups) === JSON.stringify(['float', 'legacy', 'K-quants', 'IQ', 'ternary and other']),
    `groups: ${groups}`);
  const inGroup = async (g) => page.locator(`#quantize optgroup[label="${g}"] option`).allInnerTexts();
  expect((await inGroup('K-quants')).includes('Q4_K_M'), `K-quants: ${await inGroup('K-quants')}`);
  const iq = await inGroup('IQ');
  expect(iq.includes('IQ2_XXS *') && iq.includes('IQ4_NL'), `IQ: ${iq}`);
});

function sha256File(path) {
  return 'sha256:' + createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function api(path, body) {
  const r = await fetch(url + path, { method: 'POST', body: JSON.stringify({ ...body, stream: false }) });
  const j = await r.json();
  if (r.status !== 200 || j.error) throw new Error(`${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

function modelLayer(name) {
  const m = JSON.parse(readFileSync(join(store, 'manifests/registry.ollama.ai/library', name, 'latest')));
  return m.layers.find((l) => l.mediaType === 'application/vnd.ollama.image.model').digest;
}

await step('an importance matrix and per-tensor controls from the dashboard make the model the API makes', async () => {
  // The source model, put there through the API: only the imatrix goes through the browser.
  if (!existsSync(gemma)) {
    execFileSync(resolve(root, '.venv/bin/python'), [resolve(root, '../shared/fixtures/gemma3_270m_f16.py'), gemma]);
  }
  const src = sha256File(gemma);
  const up = await fetch(`${url}/api/blobs/${src}`, { method: 'POST', body: readFileSync(gemma) });
  expect(up.status === 201 || up.status === 200, `upload: ${up.status}`);
  await api('/api/create', { model: 'gemma-src', files: { 'gemma.gguf': src } });
  await page.reload();
  await page.getByRole('row').filter({ hasText: 'gemma-src:latest' }).waitFor();

  await page.getByLabel('Model name').fill('gemma-imx');
  await page.getByLabel('From').selectOption('gemma-src:latest');
  await page.getByLabel('Quantize').selectOption('Q4_K_M');
  await page.getByLabel('Importance matrix').setInputFiles(imatrixDat);
  await page.getByText('Advanced', { exact: true }).click();
  const types = page.getByLabel('Tensor types (PATTERN=TYPE, one a line)');
  await types.fill('attn_v');
  await page.getByRole('alert').filter({ hasText: 'is not PATTERN=TYPE' }).waitFor();
  const create = page.getByRole('button', { name: 'Create', exact: true });
  expect(await create.isDisabled(), 'Create should be disabled with a malformed tensor type');
  await types.fill('attn_v=q8_0');
  await page.waitForFunction(() => !document.querySelector('#advanced-error'));
  const [posts, sent] = [blobPosts.length, creates.length];
  expect(!(await create.isDisabled()), 'Create should be enabled: ' + (await page.getByRole('alert').allTextContents()));
  await create.click();
  const outcome = page.locator('.progress').getByRole('status').or(page.locator('.progress').getByRole('alert'));
  await outcome.first().waitFor({ timeout: 120000 });
  const text = await outcome.first().innerText();
  expect(text === 'created gemma-imx', `the create ended with: ${text}`);
  const dat = sha256File(imatrixDat);
  expect(blobPosts.length === posts + 1 && blobPosts[posts].endsWith(dat), `blob posts: ${blobPosts.slice(posts)}`);
  const req = JSON.parse(creates[sent]);
  expect(req.imatrix === dat && JSON.stringify(req.tensor_types) === '["attn_v=q8_0"]' && req.from === 'gemma-src:latest',
    `request: ${creates[sent]}`);

  await api('/api/create', { model: 'gemma-api', from: 'gemma-src', quantize: 'Q4_K_M', imatrix: dat, tensor_types: ['attn_v=q8_0'] });
  const [ui, viaApi] = [modelLayer('gemma-imx'), modelLayer('gemma-api')];
  expect(ui === viaApi, `dashboard model ${ui} != API model ${viaApi}`);
  const plain = await api('/api/create', { model: 'gemma-plain', from: 'gemma-src', quantize: 'Q4_K_M' });
  expect(plain.status === 'success' && modelLayer('gemma-plain') !== ui, 'the imatrix and controls changed nothing');
  console.log(`     dashboard imatrix + tensor_types model = API model: ${ui}`);
  // A fresh form for the steps after (no `From`, no matrix, no controls).
  await page.reload();
  await page.getByRole('row').filter({ hasText: 'gemma-imx:latest' }).waitFor();
});

// Debian's docker-registry (CNCF Distribution) on a free loopback port, filesystem storage.
async function startRegistry() {
  const port = await new Promise((ok) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); }); });
  const dir = mkdtempSync(join(tmpdir(), 'kiln-ui-registry-'));
  writeFileSync(join(dir, 'config.yml'), `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`http://127.0.0.1:${port}/v2/`)).status === 200) return { addr: `127.0.0.1:${port}`, child, dir }; } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error('docker-registry did not start (is Debian\'s docker-registry installed? scripts/setup installs it)');
}

async function registryManifest(addr, repo, tag) {
  const r = await fetch(`http://${addr}/v2/${repo}/manifests/${tag}`,
    { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
  expect(r.status === 200, `registry manifest ${repo}:${tag}: ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

// The manifest file of a name in the store, whatever folder its host:port became.
function storedManifest(hostDirPart, repo, tag) {
  const base = join(store, 'manifests');
  const host = readdirSync(base).find((h) => h.includes(hostDirPart));
  expect(host, `no manifests folder for ${hostDirPart} in ${readdirSync(base)}`);
  return readFileSync(join(base, host, repo, tag));
}

let registry;
const pushed = { repo: 'kiln/qwen3', tag: 'ui' };

await step('a model is pushed to a registry from its row, copied to the registry name first', async () => {
  registry = await startRegistry();
  const target = `${registry.addr}/${pushed.repo}:${pushed.tag}`;
  await page.getByRole('button', { name: 'Push qwen3-hf:latest' }).click();
  const pane = page.getByRole('region', { name: 'Push qwen3-hf:latest' });
  await pane.getByLabel('Registry name').fill(target);
  await pane.getByLabel('Insecure (plain HTTP registry)').check();
  await pane.getByRole('button', { name: 'Push to registry' }).click();
  const area = page.getByRole('region', { name: 'Push and pull progress' });
  const outcome = area.getByRole('status').or(area.getByRole('alert'));
  await outcome.first().waitFor({ timeout: 60000 });
  const text = await outcome.first().innerText();
  expect(text === `pushed ${target}`, `the push ended with: ${text}`);
  const log = await area.getByRole('list', { name: 'Status log' }).innerText();
  expect(log.includes('retrieving manifest') && log.includes('pushing manifest') && log.includes('success'), log);
  const bars = await area.getByRole('progressbar').all();
  expect(bars.length >= 1, 'no push progress bar');
  for (const b of bars) {
    const [now, max] = [await b.getAttribute('aria-valuenow'), await b.getAttribute('aria-valuemax')];
    expect(Number(max) > 0 && now === max, `bar ${await b.getAttribute('aria-label')} at ${now}/${max}`);
  }
  const [remote, local] = [await registryManifest(registry.addr, pushed.repo, pushed.tag), storedManifest('127.0.0.1', pushed.repo, pushed.tag)];
  expect(remote.equals(local), `registry manifest differs from the store's:\n${remote}\n${local}`);
  await page.getByRole('row').filter({ hasText: target }).waitFor();
});

await step('deleted here, it comes back through the pull form byte for byte', async () => {
  const target = `${registry.addr}/${pushed.repo}:${pushed.tag}`;
  const before = storedManifest('127.0.0.1', pushed.repo, pushed.tag);
  const del = await fetch(`${url}/api/delete`, { method: 'DELETE', body: JSON.stringify({ model: target }) });
  expect(del.status === 200, `delete: ${del.status}`);
  const form = page.getByRole('region', { name: 'Pull a model' });
  await form.getByLabel('Model to pull').fill(target);
  await form.getByLabel('Insecure (plain HTTP registry)').check();
  await form.getByRole('button', { name: 'Pull', exact: true }).click();
  const area = page.getByRole('region', { name: 'Push and pull progress' });
  await area.getByRole('status').filter({ hasText: `pulled ${target}` }).waitFor({ timeout: 60000 });
  const log = await area.getByRole('list', { name: 'Status log' }).innerText();
  expect(log.includes('pulling manifest') && log.includes('verifying sha256 digest') && log.includes('writing manifest'), log);
  expect(storedManifest('127.0.0.1', pushed.repo, pushed.tag).equals(before), 'the pulled manifest differs from the pushed one');
  await page.getByRole('row').filter({ hasText: target }).waitFor();
});

await step('a pull of a name the registry lacks shows its error', async () => {
  const form = page.getByRole('region', { name: 'Pull a model' });
  await form.getByLabel('Model to pull').fill(`${registry.addr}/kiln/absent:none`);
  await form.getByRole('button', { name: 'Pull', exact: true }).click();
  const area = page.getByRole('region', { name: 'Push and pull progress' });
  await area.getByRole('alert').waitFor({ timeout: 30000 });
  const text = await area.getByRole('alert').innerText();
  expect(text.includes('file does not exist'), `error: ${text}`);
  registry.child.kill();
  rmSync(registry.dir, { recursive: true, force: true });
});

await step('files dropped on the panel are checked as a folder', async () => {
  const posts = blobPosts.length;
  const dropped = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([JSON.stringify({ architectures: ['FalconForCausalLM'] })], 'config.json'));
    dt.items.add(new File([new Uint8Array(64)], 'model.safetensors'));
    dt.items.add(new File(['{}'], 'tokenizer.json'));
    return dt;
  });
  await page.getByRole('region', { name: 'Create a model' }).dispatchEvent('drop', { dataTransfer: dropped });
  await page.getByRole('alert').filter({ hasText: 'architecture "FalconForCausalLM" is not supported' }).waitFor();
  expect(await page.getByRole('button', { name: 'Create', exact: true }).isDisabled(), 'Create should be disabled');
  expect(blobPosts.length === posts, `uploaded: ${blobPosts.slice(posts)}`);
});

await step('readable at phone width', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByLabel('Model name').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, `page scrolls sideways by ${overflow}px`);
});

await step('no page errors', async () => {
  expect(problems.length === 0, problems.join('\n'));
});

await browser.close();
server.kill();
rmSync(store, { recursive: true, force: true });
console.log(`\nscreenshots in ${shots}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
