// Assertions shared by the test files: what the gateway must have sent upstream, the OpenAI error
// envelope, replaying a recorded exchange, the "still serves" check and the clean-shutdown test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLIENT_KEY, UPSTREAM_KEY, fetchT, parseErrorEnvelope, T } from './gateway.mjs';
import { splitSSE } from './fake_openai.mjs';

export { parseErrorEnvelope };

/** Header values of a recorded upstream request, as [name, value] pairs. */
function headerPairs(rec) {
  const out = [];
  for (let i = 0; i + 1 < rec.rawHeaders.length; i += 2) out.push([rec.rawHeaders[i], rec.rawHeaders[i + 1]]);
  return out;
}

/** No header of the upstream request carries the client's own key. */
export function assertNoClientKey(rec) {
  for (const [k, v] of headerPairs(rec)) {
    assert.ok(!String(v).includes(CLIENT_KEY), `client key leaked upstream in header ${k}`);
  }
  const auths = headerPairs(rec).filter(([k]) => k.toLowerCase() === 'authorization');
  assert.ok(auths.length <= 1, `several Authorization headers sent upstream: ${JSON.stringify(auths)}`);
}

/** Two bodies are equal byte for byte; the message shows where they differ. */
export function assertSameBytes(got, want, what = 'body') {
  const g = Buffer.from(got);
  const w = Buffer.from(want);
  if (g.equals(w)) return;
  let i = 0;
  while (i < g.length && i < w.length && g[i] === w[i]) i++;
  assert.fail(`${what} differs at byte ${i} (got ${g.length} bytes, want ${w.length}):\n` +
    `  got:  ${JSON.stringify(g.subarray(Math.max(0, i - 40), i + 60).toString('utf8'))}\n` +
    `  want: ${JSON.stringify(w.subarray(Math.max(0, i - 40), i + 60).toString('utf8'))}`);
}

/**
 * The forwarded body equals what the client sent, byte for byte. When allowIncludeUsage is set
 * (a stream request that did not ask for usage), the gateway may instead have added
 * stream_options.include_usage=true (the reference does when costs are configured); then the
 * rest must be unchanged.
 */
export function assertForwardedBody(rec, sent, { allowIncludeUsage = false } = {}) {
  const got = rec.body;
  const want = Buffer.from(sent);
  if (got.equals(want) || !allowIncludeUsage) {
    assertSameBytes(got, want, 'body forwarded upstream');
  } else {
    const g = JSON.parse(got.toString('utf8'));
    const w = JSON.parse(want.toString('utf8'));
    assert.equal(g.stream_options && g.stream_options.include_usage, true, 'forwarded body changed but not by adding include_usage');
    const wo = { ...(w.stream_options || {}) };
    const go = { ...g.stream_options };
    delete go.include_usage;
    delete wo.include_usage;
    assert.deepEqual(go, wo, 'stream_options changed beyond include_usage');
    delete g.stream_options;
    delete w.stream_options;
    assert.deepEqual(g, w, 'forwarded body changed beyond stream_options.include_usage');
  }
  if (rec.headers['transfer-encoding'] === undefined) {
    assert.equal(rec.headers['content-length'], String(got.length), 'content-length sent upstream matches the body');
  }
}

/** Everything the gateway must do to an upstream request in auto-config mode. */
export function assertUpstreamRequest(rec, { path, sent, key = UPSTREAM_KEY, method = 'POST', allowIncludeUsage = false }) {
  assert.ok(rec, 'the upstream received the request');
  assert.equal(rec.method, method, 'upstream method');
  assert.equal(rec.path, path, 'upstream path (version prefix from OPENAI_BASE_URL)');
  assert.equal(rec.headers.authorization, `Bearer ${key}`, 'upstream Authorization is the configured key');
  assertNoClientKey(rec);
  if (sent !== undefined) assertForwardedBody(rec, sent, { allowIncludeUsage });
}

/** Asserts an OpenAI-format error response: status, JSON content type, envelope. Returns the body. */
export async function assertErrorResponse(res, status, what = '') {
  const text = await res.text();
  assert.equal(res.status, status, `${what} status (body: ${text.slice(0, 300)})`);
  assert.match(res.headers.get('content-type') || '', /application\/json/, `${what} content-type`);
  return parseErrorEnvelope(text);
}

/** POSTs raw bytes to the gateway as a client would (client key in Authorization). */
export function post(gw, path, body, { headers = {}, timeoutMs = T(15_000), signal } = {}) {
  return fetchT(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}`, ...headers },
    body,
    signal,
  }, timeoutMs);
}

/**
 * Replays one recorded exchange through the gateway with raw bytes: the fake answers with the
 * recorded status/content type/body (SSE split per event), the client sends requestBytes.
 * Returns { res, bytes, rec } where rec is what the fake received (undefined if nothing).
 */
export async function replayRaw(gw, fake, { path, requestBytes, status = 200, contentType, responseBytes, stream = false, delayMs = 0, headers = {} }) {
  const spec = { status, contentType, delayMs, headers };
  if (stream) spec.chunks = splitSSE(responseBytes);
  else spec.body = responseBytes;
  fake.enqueue(spec);
  const before = fake.requests.length;
  const res = await post(gw, path, requestBytes);
  const bytes = Buffer.from(await res.arrayBuffer());
  return { res, bytes, rec: fake.requests[before] };
}

/** A plain successful chat request through the gateway: proves it still serves after an error. */
export async function assertStillServes(gw, fake, label = '') {
  const before = fake.requests.length;
  const body = JSON.stringify({ model: 'gpt-still-ok', messages: [{ role: 'user', content: `still serving ${label}` }] });
  const res = await post(gw, '/v1/chat/completions', body);
  const text = await res.text();
  assert.equal(res.status, 200, `gateway still serves after ${label}: ${text.slice(0, 300)}`);
  assert.equal(JSON.parse(text).choices[0].message.content, `echo: still serving ${label}`);
  assert.equal(fake.requests.length, before + 1);
}

/** No sanitizer report on the gateway's stderr. */
export function assertNoSanitizerReport(gw) {
  assert.doesNotMatch(gw.stderr, /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/, `sanitizer report on stderr:\n${gw.stderr.slice(-4000)}`);
}

/** The last test of a file: SIGTERM stops the gateway with exit code 0 and no sanitizer report. */
export function shutdownTest(getGateways) {
  test('gateway exits 0 on SIGTERM with no sanitizer report', async () => {
    for (const gw of getGateways()) {
      if (!gw) continue;
      const ex = await gw.stop({ timeoutMs: T(10_000) });
      assert.equal(ex.code, 0);
      assertNoSanitizerReport(gw);
      assert.ok(!gw.stderr.includes(UPSTREAM_KEY), 'upstream key on stderr');
      assert.ok(!gw.stderr.includes(CLIENT_KEY), 'client key on stderr');
    }
  });
}
