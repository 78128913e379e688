// Routing from a YAML configuration: modelNameOverride splices only the top-level model value
// (the rest of the body stays byte-identical), weights split traffic, priorities prefer the first
// group, and the override shows in the access log and metrics.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeOpenAI } from './lib/fake_openai.mjs';
import { startGateway, yamlConfig } from './lib/gateway.mjs';
import { assertUpstreamRequest, assertSameBytes, post, shutdownTest } from './lib/common.mjs';
import { parseProm, total } from './lib/prom.mjs';
import { fixture } from './lib/testdata.mjs';

let fakeA;
let fakeB;
let fakeC;
let gw;

before(async () => {
  fakeA = await startFakeOpenAI();
  fakeB = await startFakeOpenAI();
  fakeC = await startFakeOpenAI();
  gw = await startGateway({
    config: (g) => yamlConfig({
      port: g.port,
      routes: [
        { model: 'alias-model', backends: [{ name: 'backend-a', port: fakeA.port, key: 'sk-key-a', override: 'real-model-2025' }] },
        { model: 'plain-model', backends: [{ name: 'backend-a', port: fakeA.port, key: 'sk-key-a' }] },
        {
          model: 'weighted-model',
          backends: [
            { name: 'backend-a', port: fakeA.port, key: 'sk-key-a', weight: 3 },
            { name: 'backend-b', port: fakeB.port, key: 'sk-key-b', weight: 1 },
            { name: 'backend-c', port: fakeC.port, key: 'sk-key-c', weight: 0 },
          ],
        },
        {
          model: 'priority-model',
          backends: [
            { name: 'backend-b', port: fakeB.port, key: 'sk-key-b', priority: 0 },
            { name: 'backend-c', port: fakeC.port, key: 'sk-key-c', priority: 1 },
          ],
        },
      ],
    }),
  });
});
after(async () => {
  await gw?.close();
  for (const f of [fakeA, fakeB, fakeC]) await f?.close();
});
beforeEach(() => { for (const f of [fakeA, fakeB, fakeC]) f.reset(); });

test('modelNameOverride splices only the top-level model value; every other byte unchanged', async () => {
  const body = '{\n  "metadata" : {"model": "alias-model", "note": "nested stays"},\n  "model"  :\t"alias-model" ,\n' +
    '  "messages": [{"role": "user", "content": "I asked for \\"alias-model\\""}],\n  "temperature": 0.7000\n}';
  const want = body.replace('"model"  :\t"alias-model"', '"model"  :\t"real-model-2025"');
  assert.notEqual(want, body);
  fakeA.enqueue({ body: fixture('chat.json') });
  const res = await post(gw, '/v1/chat/completions', body);
  assert.equal(res.status, 200);
  assertSameBytes(Buffer.from(await res.arrayBuffer()), fixture('chat.json'));
  assertUpstreamRequest(fakeA.requests[0], { path: '/v1/chat/completions', sent: want, key: 'sk-key-a' });
});

test('modelNameOverride through the SDK; no override keeps the body byte-identical', async () => {
  const client = gw.client();
  await client.chat.completions.create({ model: 'alias-model', messages: [{ role: 'user', content: 'hi' }] });
  const sent = client.sent[0].body;
  assertUpstreamRequest(fakeA.requests[0], { path: '/v1/chat/completions', sent: sent.replace('"model":"alias-model"', '"model":"real-model-2025"'), key: 'sk-key-a' });

  await client.chat.completions.create({ model: 'plain-model', messages: [{ role: 'user', content: 'hi' }] });
  assertUpstreamRequest(fakeA.requests[1], { path: '/v1/chat/completions', sent: client.sent[1].body, key: 'sk-key-a' });
});

test('a model written with JSON escapes is decoded for routing and overridden', async () => {
  const body = '{"model":"alias\\u002dmodel","messages":[{"role":"user","content":"x"}]}';
  const res = await post(gw, '/v1/chat/completions', body);
  assert.equal(res.status, 200, await res.text());
  assert.equal(JSON.parse(fakeA.requests[0].body).model, 'real-model-2025');
});

test('override shows in the access log and as gen_ai_request_model in /metrics', async () => {
  fakeA.enqueue({ body: fixture('chat.json') });
  const n = await gw.settleLogs();
  const res = await post(gw, '/v1/chat/completions', JSON.stringify({ model: 'alias-model', messages: [{ role: 'user', content: 'x' }] }));
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  await gw.waitForLogs(n + 1);
  const l = gw.logs[n];
  assert.equal(l.genai_model_name, 'alias-model');
  assert.equal(l.genai_model_name_override, 'real-model-2025');
  assert.equal(Number(l.genai_tokens_input), 13);
  const samples = parseProm(await gw.metricsText());
  const m = { gen_ai_original_model: 'alias-model', gen_ai_request_model: 'real-model-2025', gen_ai_token_type: 'input' };
  assert.ok(total(samples, 'gen_ai_client_token_usage_token_sum', m) >= 13, 'usage recorded under original=alias-model, request=real-model-2025');
});

test('weights split traffic (3:1) and a weight-0 backend gets nothing', async () => {
  const N = 60;
  for (let i = 0; i < N; i++) {
    const res = await post(gw, '/v1/chat/completions', JSON.stringify({ model: 'weighted-model', messages: [{ role: 'user', content: `w${i}` }] }));
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  }
  const a = fakeA.requests.length;
  const b = fakeB.requests.length;
  const c = fakeC.requests.length;
  assert.equal(a + b + c, N);
  assert.equal(c, 0, 'weight 0 never chosen');
  assert.ok(b >= 3, `weight-1 backend got some traffic (${b})`);
  assert.ok(a > b, `weight-3 backend got more than weight-1 (${a} vs ${b})`);
  for (const r of fakeA.requests) assert.equal(r.headers.authorization, 'Bearer sk-key-a');
  for (const r of fakeB.requests) assert.equal(r.headers.authorization, 'Bearer sk-key-b');
});

test('priority: a healthy priority-0 backend takes all traffic', async () => {
  for (let i = 0; i < 10; i++) {
    const res = await post(gw, '/v1/chat/completions', JSON.stringify({ model: 'priority-model', messages: [{ role: 'user', content: `p${i}` }] }));
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  }
  assert.equal(fakeB.requests.length, 10);
  assert.equal(fakeC.requests.length, 0);
});

shutdownTest(() => [gw]);
