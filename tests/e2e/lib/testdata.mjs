// Locates the shared recorded provider corpus (../shared/testdata next to the repository) and the
// small handwritten fixtures in tests/e2e/fixtures. Tests that need the corpus call
// requireTestdata(t) so the suite still passes on a fresh clone without it.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = path.resolve(here, '..');
export const REPO_ROOT = path.resolve(E2E_DIR, '..', '..');
export const FIXTURES_DIR = path.join(E2E_DIR, 'fixtures');

export const TESTDATA_DIR = process.env.AIGW_TESTDATA
  ? path.resolve(process.env.AIGW_TESTDATA)
  : path.resolve(REPO_ROOT, '..', 'shared', 'testdata');

export const OPENAI_DIR = path.join(TESTDATA_DIR, 'providers', 'openai');

export function haveTestdata() {
  return fs.existsSync(OPENAI_DIR) && fs.statSync(OPENAI_DIR).isDirectory();
}

export const SKIP_NO_TESTDATA = '../shared/testdata not found';

/** Returns true when the corpus exists; otherwise marks the test skipped and returns false. */
export function requireTestdata(t) {
  if (haveTestdata()) return true;
  t.skip(SKIP_NO_TESTDATA);
  return false;
}

/** Raw bytes of a handwritten fixture. */
export function fixture(name) {
  return fs.readFileSync(path.join(FIXTURES_DIR, name));
}
export function fixtureJSON(name) {
  return JSON.parse(fixture(name).toString('utf8'));
}

function contentTypeFor(file, recorded) {
  if (recorded) return recorded;
  if (file.endsWith('.sse')) return 'text/event-stream';
  return 'application/json';
}

/**
 * Every OpenAI case of the corpus as
 * { name, category, dir, meta, interactions: [{ index, method, url, path, status, requestFile,
 *   responseFile, contentType, responseHeaders, stream }] }.
 * Interactions without a recorded URL (response-only fixtures) get url/path null and status 200.
 */
export function listOpenAICases() {
  return listProviderCases('openai');
}

/** Directory of one provider of the corpus (anthropic, bedrock-converse, bedrock-invoke, ...). */
export function providerDir(provider) {
  return path.join(TESTDATA_DIR, 'providers', provider);
}

/** Every case of one provider of the corpus, in the shape listOpenAICases returns. */
export function listProviderCases(provider) {
  const root = providerDir(provider);
  if (!haveTestdata() || !fs.existsSync(root)) return [];
  const out = [];
  for (const category of fs.readdirSync(root).sort()) {
    const cdir = path.join(root, category);
    if (!fs.statSync(cdir).isDirectory()) continue;
    for (const name of fs.readdirSync(cdir).sort()) {
      const dir = path.join(cdir, name);
      const metaPath = path.join(dir, 'meta.json');
      if (!fs.existsSync(metaPath)) continue;
      const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8'));
      const interactions = (meta.interactions || []).map((it) => {
        const responseFile = it.response_file || null;
        const rh = it.response_headers || {};
        let urlPath = null;
        if (it.url) {
          try { urlPath = new URL(it.url).pathname; } catch { urlPath = null; }
        }
        return {
          index: it.index,
          requestHeaders: it.request_headers || {},
          method: it.method || null,
          url: it.url || null,
          path: urlPath,
          status: it.status || 200,
          requestFile: it.request_file || null,
          responseFile,
          responseHeaders: rh,
          contentType: responseFile ? contentTypeFor(responseFile, rh['content-type']) : null,
          stream: responseFile ? responseFile.endsWith('.sse') : false,
        };
      });
      out.push({ name, category, dir, meta, tags: meta.tags || [], interactions });
    }
  }
  return out;
}

/** Bytes of one file of a case (Buffer), or null when absent. */
export function caseFile(c, file) {
  if (!file) return null;
  const p = path.join(c.dir, file);
  return fs.existsSync(p) ? fs.readFileSync(p) : null;
}

/** The SSE data payloads of a recorded stream, without [DONE], parsed as JSON. */
export function sseDataObjects(buf) {
  const text = Buffer.isBuffer(buf) ? buf.toString('utf8') : String(buf);
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''))
      .join('\n');
    if (!data || data === '[DONE]') continue;
    out.push(JSON.parse(data));
  }
  return out;
}

/** Usage numbers a recorded response carries: { input, output, cached } or null. */
export function usageOf(body, stream) {
  const objs = stream ? sseDataObjects(body) : [JSON.parse(Buffer.from(body).toString('utf8'))];
  let found = null;
  for (const o of objs) {
    const u = o && o.usage;
    if (!u || typeof u !== 'object') continue;
    const input = u.prompt_tokens ?? u.input_tokens;
    const output = u.completion_tokens ?? u.output_tokens ?? 0;
    if (input === undefined) continue;
    const cached = (u.prompt_tokens_details && u.prompt_tokens_details.cached_tokens) ||
      (u.input_tokens_details && u.input_tokens_details.cached_tokens) || 0;
    found = { input, output, cached };
  }
  return found;
}

/** The model the response reports (last one seen in a stream), or null. */
export function responseModelOf(body, stream) {
  const objs = stream ? sseDataObjects(body) : [JSON.parse(Buffer.from(body).toString('utf8'))];
  let m = null;
  for (const o of objs) if (o && typeof o.model === 'string' && o.model) m = o.model;
  return m;
}

/** Chat-completion cases that can be replayed through /v1/chat/completions with a 200. */
export function chatReplayCases() {
  return listOpenAICases().filter((c) =>
    ['nonstream', 'stream', 'tools', 'reasoning', 'caching'].includes(c.category) &&
    c.interactions.length > 0 &&
    c.interactions.every((it) => (it.path === null || it.path === '/v1/chat/completions') && it.status === 200 && it.responseFile &&
      (it.responseFile.endsWith('.json') || it.responseFile.endsWith('.sse'))));
}
