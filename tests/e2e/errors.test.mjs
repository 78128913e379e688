// Every error the gateway can give, each in the OpenAI error JSON format with the right status, and
// each followed by a successful request (an error never stops the gateway from serving).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startFakeOpenAI } from './lib/fake_openai.mjs';
import {
  startGateway, openaiEnv, yamlConfig, closedPort, fetchT, T, UPSTREAM_KEY, CLIENT_KEY,
} from './lib/gateway.mjs';
import {
  assertErrorResponse, assertStillServes, assertSameBytes, post, replayRaw, shutdownTest, assertUpstreamRequest, parseErrorEnvelope,
} from './lib/common.mjs';
import { requireTestdata, listOpenAICases, caseFile } from './lib/testdata.mjs';

const NO_ROUTE = 'No matching route found. It is likely because the model specified in your request is not configured in the Gateway.';

let fake;
let gw;          // auto-config -> fake, short request timeout
let gwYaml;      // one exact-match model -> fake
let gwDown;      // auto-config -> a port where nothing listens
let downPort;

before(async () => {
  fake = await startFakeOpenAI();
  gw = await startGateway({ env: openaiEnv(fake), args: ['--request-timeout', String(Math.max(2, Math.ceil(T(2000) / 1000)))] });
  gwYaml = await startGateway({
    config: (g) => yamlConfig({ port: g.port, routes: [{ model: 'gpt-known', backends: [{ name: 'fake', port: fake.port, key: 'sk-yaml-known' }] }] }),
  });
  downPort = await closedPort();
  gwDown = await startGateway({ env: { OPENAI_API_KEY: UPSTREAM_KEY, OPENAI_BASE_URL: `http://127.0.0.1:${downPort}/v1` }, args: ['--connect-timeout', '2'] });
});
after(async () => {
  await gw?.close();
  await gwYaml?.close();
  await gwDown?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const chat = (extra = {}) => JSON.stringify({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'hi' }], ...extra });

for (const [name, body] of [
  ['invalid JSON', '{"model": "gpt-e2e", "messages": ['],
  ['empty body', ''],
  ['JSON array instead of object', '[{"model":"gpt-e2e"}]'],
  ['JSON string', '"gpt-e2e"'],
  ['body without model', '{"messages":[{"role":"user","content":"hi"}]}'],
  ['model not a string', '{"model": 42, "messages":[]}'],
  ['trailing garbage after the object', '{"model":"gpt-e2e","messages":[]} trailing'],
]) {
  test(`400 for ${name}, nothing sent upstream, then still serves`, async () => {
    const res = await post(gw, '/v1/chat/completions', body);
    const j = await assertErrorResponse(res, 400, name);
    assert.equal(typeof j.error.message, 'string');
    assert.equal(fake.requests.length, 0, 'a bad request never reaches the upstream');
    await assertStillServes(gw, fake, name);
  });
}

test('400 via the SDK on /v1/embeddings without model raises BadRequestError', async () => {
  const res = await post(gw, '/v1/embeddings', '{"input":"x"}');
  await assertErrorResponse(res, 400, 'embeddings without model');
  await assertStillServes(gw, fake, 'embeddings without model');
});

test('unknown model -> 404 with the reference text (raw and SDK), then still serves', async () => {
  const res = await post(gwYaml, '/v1/chat/completions', chat({ model: 'gpt-unknown' }));
  const j = await assertErrorResponse(res, 404, 'unknown model');
  assert.equal(j.error.message, NO_ROUTE);
  assert.equal(fake.requests.length, 0);

  const client = gwYaml.client();
  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-unknown-2', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.message.includes(NO_ROUTE),
  );
  await assert.rejects(
    client.embeddings.create({ model: 'emb-unknown', input: 'x', encoding_format: 'float' }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404,
  );
  assert.equal(fake.requests.length, 0);

  const ok = await client.chat.completions.create({ model: 'gpt-known', messages: [{ role: 'user', content: 'fine' }] });
  assert.equal(ok.choices[0].message.content, 'echo: fine');
  assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: client.sent.at(-1).body, key: 'sk-yaml-known' });
});

test('routing uses the body model, never a client-supplied x-ai-eg-model header', async () => {
  const res = await post(gwYaml, '/v1/chat/completions', chat({ model: 'gpt-unknown-hdr' }), { headers: { 'x-ai-eg-model': 'gpt-known' } });
  const j = await assertErrorResponse(res, 404, 'client header must not route');
  assert.equal(j.error.message, NO_ROUTE);
  assert.equal(fake.requests.length, 0);
  const ok = await post(gwYaml, '/v1/chat/completions', chat({ model: 'gpt-known' }), { headers: { 'x-ai-eg-model': 'gpt-unknown-hdr' } });
  assert.equal(ok.status, 200, await ok.text());
  assert.equal(fake.requests.length, 1);
});

for (const [method, path] of [['POST', '/v1/nope'], ['GET', '/'], ['POST', '/v2/chat/completions'], ['POST', '/v1/chat/completions/extra']]) {
  test(`unknown path ${method} ${path} -> 404 JSON error, then still serves`, async () => {
    const res = await fetchT(`${gw.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: method === 'POST' ? chat() : undefined });
    await assertErrorResponse(res, 404, `${method} ${path}`);
    assert.equal(fake.requests.length, 0);
    await assertStillServes(gw, fake, `404 ${path}`);
  });
}

for (const [method, path] of [['GET', '/v1/chat/completions'], ['PUT', '/v1/embeddings'], ['DELETE', '/v1/completions'], ['POST', '/v1/models']]) {
  test(`wrong method ${method} ${path} -> 405 JSON error, then still serves`, async () => {
    const res = await fetchT(`${gw.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: ['GET', 'DELETE'].includes(method) ? undefined : chat() });
    await assertErrorResponse(res, 405, `${method} ${path}`);
    assert.equal(fake.requests.length, 0);
    await assertStillServes(gw, fake, `405 ${method} ${path}`);
  });
}

test('upstream unreachable -> 502 JSON error (raw and SDK), gateway keeps serving', async () => {
  const res = await post(gwDown, '/v1/chat/completions', chat());
  await assertErrorResponse(res, 502, 'unreachable upstream');
  const client = gwDown.client();
  await assert.rejects(client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.APIError && e.status === 502);
  // Still answering: a local endpoint and another 502.
  const m = await fetchT(`${gwDown.baseURL}/models`);
  assert.equal(m.status, 200);
  await m.arrayBuffer();
  const again = await post(gwDown, '/v1/embeddings', JSON.stringify({ model: 'e', input: 'x' }));
  await assertErrorResponse(again, 502, 'unreachable upstream (again)');
});

test('upstream timeout (upstream never answers) -> 504 JSON error, then still serves', async () => {
  fake.enqueue({ hang: true });
  const t0 = Date.now();
  const res = await post(gw, '/v1/chat/completions', chat(), { timeoutMs: T(15_000) });
  await assertErrorResponse(res, 504, 'upstream timeout');
  const took = Date.now() - t0;
  assert.ok(took >= 1500, `504 came after the request timeout, not before (${took} ms)`);
  assert.ok(took < T(10_000), `504 came within a bound (${took} ms)`);
  await fake.waitFor((f) => f.requests[0].aborted, T(3000), 'the hung upstream request to be closed by the gateway');
  await assertStillServes(gw, fake, 'timeout');
});

test('upstream timeout on a stream that never starts -> 504, then still serves', async () => {
  fake.enqueue({ hang: true });
  const res = await post(gw, '/v1/chat/completions', chat({ stream: true, stream_options: { include_usage: true } }), { timeoutMs: T(15_000) });
  await assertErrorResponse(res, 504, 'upstream stream timeout');
  await assertStillServes(gw, fake, 'stream timeout');
});

for (const [status, Cls] of [[400, OpenAI.BadRequestError], [401, OpenAI.AuthenticationError], [403, OpenAI.PermissionDeniedError],
  [404, OpenAI.NotFoundError], [422, OpenAI.UnprocessableEntityError], [429, OpenAI.RateLimitError], [500, OpenAI.InternalServerError],
  [503, OpenAI.InternalServerError]]) {
  test(`upstream JSON ${status} passes through with its status and body, SDK raises ${Cls.name}`, async () => {
    const body = Buffer.from(JSON.stringify({ error: { message: `upstream says ${status}`, type: 'upstream_test_error', param: 'p', code: `c${status}` } }, null, 2));
    const { res, bytes } = await replayRaw(gw, fake, { path: '/v1/chat/completions', requestBytes: chat(), status, contentType: 'application/json', responseBytes: body });
    assert.equal(res.status, status);
    assertSameBytes(bytes, body, 'upstream error body');
    assert.match(res.headers.get('content-type'), /application\/json/);

    fake.enqueue({ status, body });
    const client = gw.client();
    await assert.rejects(client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof Cls && e.status === status && e.message.includes(`upstream says ${status}`) && e.code === `c${status}`);
    await assertStillServes(gw, fake, `upstream ${status}`);
  });
}

for (const [status, ct, text] of [
  [502, 'text/html', '<html><body><h1>502 Bad Gateway</h1></body></html>'],
  [500, 'text/plain', 'internal explosion'],
  [503, undefined, ''],
  [429, 'text/plain; charset=utf-8', 'slow down'],
]) {
  test(`non-JSON upstream ${status} (${ct || 'no content-type'}) becomes a JSON error with the same status`, async () => {
    fake.enqueue({ status, contentType: ct ?? null, body: text });
    const res = await post(gw, '/v1/chat/completions', chat());
    const j = await assertErrorResponse(res, status, `non-JSON upstream ${status}`);
    assert.ok(j.error.message.length > 0);
    await assertStillServes(gw, fake, `non-JSON ${status}`);
  });
}

test('upstream error for a streaming request arrives as a JSON error, not SSE', async () => {
  const body = JSON.stringify({ error: { message: 'bad stream param', type: 'invalid_request_error', param: 'stream_options', code: null } });
  fake.enqueue({ status: 400, body });
  const res = await post(gw, '/v1/chat/completions', chat({ stream: true }));
  const text = await res.text();
  assert.equal(res.status, 400);
  assert.equal(text, body);
  const client = gw.client();
  fake.enqueue({ status: 400, body });
  await assert.rejects(async () => {
    const s = await client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'x' }], stream: true });
    for await (const _ of s) { /* drain */ }
  }, (e) => e instanceof OpenAI.BadRequestError && e.message.includes('bad stream param'));
  await assertStillServes(gw, fake, 'stream upstream 400');
});

test('upstream closes the connection without answering -> 502 JSON error, then still serves', async () => {
  // Every attempt is reset (a gateway may retry once on a fresh connection when a pooled one
  // turns out to be dead; it must not loop).
  fake.defaultSpec = { destroyImmediately: true };
  const res = await post(gw, '/v1/chat/completions', chat());
  await assertErrorResponse(res, 502, 'upstream reset');
  assert.ok(fake.requests.length >= 1 && fake.requests.length <= 2, `attempts: ${fake.requests.length}`);
  fake.defaultSpec = null;
  await assertStillServes(gw, fake, 'upstream reset');
});

for (const framing of ['content-length', 'chunked']) {
  test(`upstream dies in the middle of a non-streaming body (${framing}): never a cut body that looks complete`, async () => {
    const full = Buffer.from(JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'gpt-e2e', choices: [{ index: 0, message: { role: 'assistant', content: 'y'.repeat(20000) }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
    fake.enqueue({ chunks: [full.subarray(0, 8000), full.subarray(8000)], chunked: framing === 'chunked', contentType: 'application/json', failAfterChunks: 1 });
    const res = await post(gw, '/v1/chat/completions', chat());
    await assertNotCutJSON(res, full.length);
    await assertStillServes(gw, fake, `non-stream upstream truncation (${framing})`);
  });
}

test('request timeout in the middle of a non-streaming body: never a cut body that looks complete', async () => {
  fake.enqueue({ chunks: ['{"id":"x","object":"chat.completion",', '"choices":[]}'], chunked: true, contentType: 'application/json', delayMs: T(4000) });
  const res = await post(gw, '/v1/chat/completions', chat(), { timeoutMs: T(15_000) });
  await assertNotCutJSON(res, 50);
  await assertStillServes(gw, fake, 'timeout mid-body');
});

/** A non-streaming response whose upstream failed mid-body: either the client sees the failure at
 * the HTTP level (body read error), or it gets a well-formed OpenAI error - never a 200 whose body
 * is a prefix of the upstream's (or has an SSE event glued to it). */
async function assertNotCutJSON(res, fullLength) {
  let body = null;
  let readError = null;
  try { body = Buffer.from(await res.arrayBuffer()); } catch (e) { readError = e; }
  if (readError !== null) return;
  assert.notEqual(res.status, 200, `a cut upstream body was delivered as a complete 200 (${body.length} of ${fullLength} bytes): ${JSON.stringify(body.toString('utf8').slice(-200))}`);
  parseErrorEnvelope(body.toString('utf8'));
}

test('client gone before the upstream answers: the upstream request is cancelled', async () => {
  fake.enqueue({ initialDelayMs: 3000, body: '{}' });
  const ac = new AbortController();
  const p = post(gw, '/v1/chat/completions', chat(), { signal: ac.signal });
  await fake.waitForRequests(1, T(3000));
  ac.abort();
  await assert.rejects(p);
  await fake.waitFor((f) => f.requests[0].aborted, T(2000), 'the upstream request to be closed after the client left');
  assert.ok(Date.now() - fake.requests[0].receivedAt < 2900, 'cancelled before the upstream answered');
  await assertStillServes(gw, fake, 'client gone early');
});

test('recorded upstream error cases pass through with status and body', async (t) => {
  if (!requireTestdata(t)) return;
  const cases = listOpenAICases().filter((c) => c.category === 'errors' && c.interactions[0].path);
  assert.ok(cases.length >= 5);
  for (const c of cases) {
    await t.test(c.name, async () => {
      const it = c.interactions[0];
      const responseBytes = caseFile(c, it.responseFile);
      const requestBytes = caseFile(c, it.requestFile) || Buffer.from(chat());
      fake.reset();
      const { res, bytes, rec } = await replayRaw(gw, fake, { path: it.path, requestBytes, status: it.status, contentType: it.contentType, responseBytes });
      assert.equal(res.status, it.status);
      assertSameBytes(bytes, responseBytes);
      assertUpstreamRequest(rec, { path: it.path, sent: requestBytes });
      await assertStillServes(gw, fake, c.name);
    });
  }
});

test('errors are access-logged with their status and model', async () => {
  await gwYaml.settleLogs();
  const notFound = gwYaml.logs.filter((l) => l.genai_model_name === 'gpt-unknown');
  assert.equal(notFound.length, 1, 'one line for the unknown-model request');
  assert.equal(Number(notFound[0].response_code), 404);
  await gw.settleLogs();
  const codes = gw.logs.map((l) => Number(l.response_code));
  for (const code of [400, 504, 429, 500, 503]) assert.ok(codes.includes(code), `a ${code} was logged (logged: ${[...new Set(codes)].join(',')})`);
  const down = gwDown.logs.map((l) => Number(l.response_code));
  assert.ok(down.includes(502), 'the 502 was logged');
});

test('every request gets exactly one access-log line, including locally answered ones', async () => {
  const problems = [];
  for (const [method, path, body, status] of [
    ['POST', '/v1/chat/completions', '{bad', 400],
    ['GET', '/v1/chat/completions', undefined, 405],
    ['POST', '/v1/nope', '{}', 404],
    ['GET', '/v1/models', undefined, 200],
    ['POST', '/v1/chat/completions', chat(), 200],
  ]) {
    const n = await gw.settleLogs();
    const res = await fetchT(`${gw.url}${path}`, { method, body, headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, status);
    await res.arrayBuffer();
    const m = await gw.settleLogs();
    if (m !== n + 1) problems.push(`${method} ${path} (${status}): ${m - n} access-log line(s)`);
    else if (Number(gw.logs[m - 1].response_code) !== status) problems.push(`${method} ${path}: logged response_code ${gw.logs[m - 1].response_code}`);
  }
  assert.deepEqual(problems, [], problems.join('\n'));
});

test('error responses and logs never carry the keys', async () => {
  const all = JSON.stringify([gw.logs, gwYaml.logs, gwDown.logs]);
  assert.ok(!all.includes(UPSTREAM_KEY) && !all.includes(CLIENT_KEY) && !all.includes('sk-yaml-known'));
});

shutdownTest(() => [gw, gwYaml, gwDown]);
