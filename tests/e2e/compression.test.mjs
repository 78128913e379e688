// gzip and brotli encoded upstream responses: the client receives the upstream's bytes and
// content-encoding unchanged, while the gateway still decodes them for itself and counts usage in
// /metrics and the access log.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';
import { startFakeOpenAI, splitSSE } from './lib/fake_openai.mjs';
import { startGateway, openaiEnv, T, CLIENT_KEY } from './lib/gateway.mjs';
import { assertSameBytes, shutdownTest, assertUpstreamRequest } from './lib/common.mjs';
import { parseProm, total } from './lib/prom.mjs';
import { fixture, fixtureJSON, usageOf } from './lib/testdata.mjs';

let fake;
let gw;
const counted = []; // { model, usage, stream }

before(async () => {
  fake = await startFakeOpenAI();
  gw = await startGateway({ env: openaiEnv(fake) });
});
after(async () => {
  await gw?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

/** POST with node:http so the body is not decompressed on our side. */
function rawPost(path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: gw.port, method: 'POST', path,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${CLIENT_KEY}`, 'accept-encoding': 'gzip, br', ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(T(15_000), () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

const decode = (enc, b) => (enc === 'gzip' ? zlib.gunzipSync(b) : zlib.brotliDecompressSync(b));

for (const enc of ['gzip', 'br']) {
  test(`${enc} non-streaming response: bytes and content-encoding unchanged`, async () => {
    const model = `${enc}-chat`;
    fake.enqueue({ body: fixture('chat.json'), encoding: enc });
    const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'compressed please' }] });
    const r = await rawPost('/v1/chat/completions', body);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], enc);
    assertSameBytes(r.body, fake.requests[0].sentBody, `${enc} body bytes`);
    assertSameBytes(decode(enc, r.body), fixture('chat.json'), 'decoded body');
    if (r.headers['content-length'] !== undefined) assert.equal(Number(r.headers['content-length']), r.body.length);
    assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: body });
    counted.push({ model, usage: usageOf(fixture('chat.json'), false) });
  });

  test(`${enc} streaming response (flushed per event): bytes unchanged, events usable`, async () => {
    const model = `${enc}-stream`;
    const sse = fixture('chat_stream.sse');
    fake.enqueue({ chunks: splitSSE(sse), encoding: enc, delayMs: 10 });
    const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } });
    const r = await rawPost('/v1/chat/completions', body);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], enc);
    assert.match(r.headers['content-type'], /text\/event-stream/);
    assertSameBytes(r.body, fake.requests[0].sentBody, `${enc} stream bytes`);
    assertSameBytes(decode(enc, r.body), sse, 'decoded stream');
    counted.push({ model, usage: usageOf(sse, true) });
  });

  test(`${enc} response through the SDK (fetch decodes it)`, async () => {
    const client = gw.client();
    fake.enqueue({ body: fixture('chat.json'), encoding: enc });
    const model = `${enc}-sdk`;
    const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] });
    assert.deepEqual(JSON.parse(JSON.stringify(r)), fixtureJSON('chat.json'));
    counted.push({ model, usage: usageOf(fixture('chat.json'), false) });
  });
}

test('gzip embeddings response: usage counted', async () => {
  fake.enqueue({ body: fixture('embeddings_float.json'), encoding: 'gzip' });
  const r = await rawPost('/v1/embeddings', '{"model":"gzip-emb","input":"x","encoding_format":"float"}');
  assert.equal(r.status, 200);
  assertSameBytes(zlib.gunzipSync(r.body), fixture('embeddings_float.json'));
  counted.push({ model: 'gzip-emb', usage: usageOf(fixture('embeddings_float.json'), false), embeddings: true });
});

test('usage of compressed responses is in /metrics and the access log', async () => {
  assert.ok(counted.length >= 6);
  await gw.waitForLogs(counted.length);
  const samples = parseProm(await gw.metricsText());
  const problems = [];
  for (const c of counted) {
    const m = { gen_ai_original_model: c.model };
    const input = total(samples, 'gen_ai_client_token_usage_token_sum', { ...m, gen_ai_token_type: 'input' });
    const output = total(samples, 'gen_ai_client_token_usage_token_sum', { ...m, gen_ai_token_type: 'output' });
    const cached = total(samples, 'gen_ai_client_token_usage_token_sum', { ...m, gen_ai_token_type: 'cached_input' });
    if (input !== c.usage.input) problems.push(`${c.model}: input ${input} != ${c.usage.input}`);
    if (!c.embeddings && output !== c.usage.output) problems.push(`${c.model}: output ${output} != ${c.usage.output}`);
    if (cached !== c.usage.cached) problems.push(`${c.model}: cached_input ${cached} != ${c.usage.cached}`);
    const line = gw.logs.find((l) => l.genai_model_name === c.model);
    if (!line) problems.push(`${c.model}: no access-log line`);
    else {
      if (Number(line.genai_tokens_input) !== c.usage.input) problems.push(`${c.model}: log genai_tokens_input ${line.genai_tokens_input}`);
      if (!c.embeddings && Number(line.genai_tokens_output) !== c.usage.output) problems.push(`${c.model}: log genai_tokens_output ${line.genai_tokens_output}`);
    }
  }
  assert.deepEqual(problems, [], problems.join('\n'));
});

shutdownTest(() => [gw]);
