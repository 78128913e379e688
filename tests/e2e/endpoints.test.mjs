// The other OpenAI endpoints through the gateway with the openai SDK: embeddings (float and
// base64), legacy completions (streaming and not), image generation, and /v1/models served locally.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeOpenAI, splitSSE, sseOf } from './lib/fake_openai.mjs';
import { startGateway, openaiEnv, yamlConfig, fetchT, UPSTREAM_KEY } from './lib/gateway.mjs';
import { assertUpstreamRequest, assertSameBytes, replayRaw, shutdownTest } from './lib/common.mjs';
import {
  fixture, fixtureJSON, requireTestdata, listOpenAICases, caseFile, sseDataObjects,
} from './lib/testdata.mjs';

let fake;
let gw;       // auto-configured from the environment
let gwYaml;   // configured from a YAML file with two exact-match models

before(async () => {
  fake = await startFakeOpenAI();
  gw = await startGateway({ env: openaiEnv(fake) });
  gwYaml = await startGateway({
    config: (g) => yamlConfig({
      port: g.port,
      routes: [
        { model: 'gpt-e2e-alpha', backends: [{ name: 'fake-a', port: fake.port, key: 'sk-yaml-key-alpha' }] },
        { model: 'text-embedding-e2e-beta', backends: [{ name: 'fake-a', port: fake.port, key: 'sk-yaml-key-alpha' }] },
      ],
    }),
  });
});
after(async () => {
  await gw?.close();
  await gwYaml?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

function floats(arr) {
  return Array.from(arr, (x) => Math.fround(x));
}

test('embeddings float via SDK: vectors, usage, body forwarded byte-identical', async () => {
  const client = gw.client();
  fake.enqueue({ body: fixture('embeddings_float.json') });
  const r = await client.embeddings.create({ model: 'text-embedding-e2e', input: ['first text', 'second text'], encoding_format: 'float' });
  assert.deepEqual(r, fixtureJSON('embeddings_float.json'));
  assertUpstreamRequest(fake.requests[0], { path: '/v1/embeddings', sent: client.sent[0].body });
  assert.equal(JSON.parse(fake.requests[0].body).encoding_format, 'float');
});

test('embeddings base64 via SDK default (SDK asks base64 and decodes): same floats', async () => {
  const client = gw.client();
  fake.enqueue({ body: fixture('embeddings_base64.json') });
  const r = await client.embeddings.create({ model: 'text-embedding-e2e', input: ['first text', 'second text'] });
  assert.equal(JSON.parse(fake.requests[0].body).encoding_format, 'base64');
  assert.deepEqual(floats(r.data[0].embedding), floats([0.5, -0.25, 1.0, 0.125]));
  assert.deepEqual(floats(r.data[1].embedding), floats([-1.5, 0.75, 0.0, 2.0]));
  assert.equal(r.usage.prompt_tokens, 6);
  assertUpstreamRequest(fake.requests[0], { path: '/v1/embeddings', sent: client.sent[0].body });
});

test('embeddings base64 explicit: the base64 strings arrive unchanged', async () => {
  const client = gw.client();
  fake.enqueue({ body: fixture('embeddings_base64.json') });
  const res = await client.embeddings.create({ model: 'text-embedding-e2e', input: 'x', encoding_format: 'base64' }).asResponse();
  assertSameBytes(Buffer.from(await res.arrayBuffer()), fixture('embeddings_base64.json'));
});

test('legacy completions, non-streaming, via SDK', async () => {
  const client = gw.client();
  fake.enqueue({ body: fixture('completion.json') });
  const r = await client.completions.create({ model: 'instruct-e2e', prompt: 'The sky is', max_tokens: 16 });
  assert.deepEqual(r, fixtureJSON('completion.json'));
  assertUpstreamRequest(fake.requests[0], { path: '/v1/completions', sent: client.sent[0].body });
});

test('legacy completions, streaming with usage, via SDK and raw bytes', async () => {
  const client = gw.client();
  const sse = fixture('completion_stream.sse');
  fake.enqueue({ chunks: splitSSE(sse), delayMs: 5 });
  const stream = await client.completions.create({ model: 'instruct-e2e', prompt: 'count', stream: true, stream_options: { include_usage: true } });
  const got = [];
  for await (const ch of stream) got.push(ch);
  assert.deepEqual(got, sseDataObjects(sse));
  assert.equal(got.map((c) => c.choices[0]?.text ?? '').join(''), ' one two three');
  assertUpstreamRequest(fake.requests[0], { path: '/v1/completions', sent: client.sent[0].body });

  fake.enqueue({ chunks: splitSSE(sse) });
  const res = await client.completions.create({ model: 'instruct-e2e', prompt: 'count', stream: true, stream_options: { include_usage: true } }).asResponse();
  assertSameBytes(Buffer.from(await res.arrayBuffer()), sse, 'SSE bytes');
});

test('image generation via SDK', async () => {
  const client = gw.client();
  fake.enqueue({ body: fixture('image.json') });
  const r = await client.images.generate({ model: 'gpt-image-1', prompt: 'a single transparent pixel', size: '1024x1024', n: 1 });
  assert.deepEqual(r, fixtureJSON('image.json'));
  assertUpstreamRequest(fake.requests[0], { path: '/v1/images/generations', sent: client.sent[0].body });
});

test('/v1/models is served locally from the configured exact-match models', async () => {
  const client = gwYaml.client();
  const ids = [];
  const models = await client.models.list();
  for await (const m of models) {
    ids.push(m.id);
    assert.equal(m.object, 'model');
    assert.equal(typeof m.created, 'number');
    assert.equal(m.owned_by, 'Envoy AI Gateway');
  }
  assert.deepEqual(ids.sort(), ['gpt-e2e-alpha', 'text-embedding-e2e-beta']);

  const res = await fetchT(`${gwYaml.baseURL}/models`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const j = await res.json();
  assert.equal(j.object, 'list');
  assert.equal(j.data.length, 2);
  assert.equal(fake.requests.length, 0, '/v1/models never goes upstream');
});

test('/v1/models answers locally in auto-config mode too', async () => {
  const res = await fetchT(`${gw.baseURL}/models`);
  assert.equal(res.status, 200);
  const j = await res.json();
  assert.equal(j.object, 'list');
  assert.ok(Array.isArray(j.data));
  assert.equal(fake.requests.length, 0, '/v1/models never goes upstream');
});

test('YAML-configured backend: Secret API key used upstream, routed by exact model', async () => {
  const client = gwYaml.client();
  fake.enqueue({ body: fixture('chat.json') });
  const r = await client.chat.completions.create({ model: 'gpt-e2e-alpha', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.id, 'chatcmpl-e2e-0001');
  assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: client.sent[0].body, key: 'sk-yaml-key-alpha' });

  fake.enqueue({ body: fixture('embeddings_float.json') });
  await client.embeddings.create({ model: 'text-embedding-e2e-beta', input: 'x', encoding_format: 'float' });
  assertUpstreamRequest(fake.requests[1], { path: '/v1/embeddings', sent: client.sent[1].body, key: 'sk-yaml-key-alpha' });
  assert.notEqual(fake.requests[1].headers.authorization, `Bearer ${UPSTREAM_KEY}`);
});

function endpointCases(category, path) {
  return listOpenAICases().filter((c) => c.category === category && c.interactions.length === 1 &&
    (c.interactions[0].path === null || c.interactions[0].path === path) && c.interactions[0].status === 200);
}

function responseOf(c, it) {
  if (it.responseFile && it.responseFile.endsWith('.chunks.jsonl')) {
    const lines = caseFile(c, it.responseFile).toString('utf8').split('\n').filter(Boolean);
    return { bytes: Buffer.from(sseOf(lines.map((l) => JSON.stringify(JSON.parse(l))))), stream: true, contentType: 'text/event-stream' };
  }
  return { bytes: caseFile(c, it.responseFile), stream: it.stream, contentType: it.contentType };
}

test('recorded embeddings cases replay byte-exact (raw) and through the SDK', async (t) => {
  if (!requireTestdata(t)) return;
  const cases = endpointCases('embeddings', '/v1/embeddings');
  assert.ok(cases.length >= 5);
  for (const c of cases) {
    await t.test(c.name, async () => {
      const it = c.interactions[0];
      const { bytes: responseBytes } = responseOf(c, it);
      const resp = JSON.parse(responseBytes.toString('utf8'));
      const isB64 = typeof resp.data[0].embedding === 'string';
      let requestBytes = caseFile(c, it.requestFile);
      if (!requestBytes) requestBytes = Buffer.from(JSON.stringify({ model: 'text-embedding-3-small', input: 'replay', encoding_format: isB64 ? 'base64' : 'float' }));
      fake.reset();
      const { res, bytes, rec } = await replayRaw(gw, fake, { path: '/v1/embeddings', requestBytes, contentType: it.contentType, responseBytes });
      assert.equal(res.status, 200);
      assertSameBytes(bytes, responseBytes);
      assertUpstreamRequest(rec, { path: '/v1/embeddings', sent: requestBytes });

      const client = gw.client();
      fake.enqueue({ body: responseBytes });
      const params = { ...JSON.parse(requestBytes.toString('utf8')), encoding_format: isB64 ? 'base64' : 'float' };
      const got = await client.embeddings.create(params);
      assert.deepEqual(JSON.parse(JSON.stringify(got)), resp);
    });
  }
});

test('recorded legacy completions cases replay byte-exact (raw) and through the SDK', async (t) => {
  if (!requireTestdata(t)) return;
  const cases = endpointCases('legacy-completions', '/v1/completions');
  assert.ok(cases.length >= 5);
  for (const c of cases) {
    await t.test(c.name, async () => {
      const it = c.interactions[0];
      const { bytes: responseBytes, stream, contentType } = responseOf(c, it);
      let requestBytes = caseFile(c, it.requestFile);
      if (!requestBytes) requestBytes = Buffer.from(JSON.stringify({ model: 'gpt-3.5-turbo-instruct', prompt: 'replay', ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}) }));
      const reqJSON = JSON.parse(requestBytes.toString('utf8'));
      const askedUsage = !!(reqJSON.stream_options && reqJSON.stream_options.include_usage);
      fake.reset();
      const { res, bytes, rec } = await replayRaw(gw, fake, { path: '/v1/completions', requestBytes, contentType, responseBytes, stream });
      assert.equal(res.status, 200);
      assertSameBytes(bytes, responseBytes);
      assertUpstreamRequest(rec, { path: '/v1/completions', sent: requestBytes, allowIncludeUsage: stream && !askedUsage });

      const client = gw.client();
      fake.enqueue(stream ? { chunks: splitSSE(responseBytes), contentType } : { body: responseBytes, contentType });
      if (stream) {
        const s = await client.completions.create({ ...reqJSON, stream: true });
        const got = [];
        for await (const ch of s) got.push(ch);
        assert.deepEqual(JSON.parse(JSON.stringify(got)), sseDataObjects(responseBytes));
      } else {
        const got = await client.completions.create(reqJSON);
        assert.deepEqual(JSON.parse(JSON.stringify(got)), JSON.parse(responseBytes.toString('utf8')));
      }
    });
  }
});

test('recorded image generation case replays byte-exact', async (t) => {
  if (!requireTestdata(t)) return;
  const cases = listOpenAICases().filter((c) => c.category === 'images' && !c.name.includes('edit'));
  assert.ok(cases.length >= 1);
  for (const c of cases) {
    const it = c.interactions[0];
    const responseBytes = caseFile(c, it.responseFile);
    const requestBytes = Buffer.from(JSON.stringify({ model: 'dall-e-3', prompt: 'A small and adorable baby sea otter', n: 2, response_format: 'b64_json' }));
    fake.reset();
    const { res, bytes, rec } = await replayRaw(gw, fake, { path: '/v1/images/generations', requestBytes, contentType: 'application/json', responseBytes });
    assert.equal(res.status, 200);
    assertSameBytes(bytes, responseBytes);
    assertUpstreamRequest(rec, { path: '/v1/images/generations', sent: requestBytes });
    const client = gw.client();
    fake.enqueue({ body: responseBytes });
    const got = await client.images.generate(JSON.parse(requestBytes.toString('utf8')));
    assert.deepEqual(JSON.parse(JSON.stringify(got)), JSON.parse(responseBytes.toString('utf8')));
  }
});

shutdownTest(() => [gw, gwYaml]);
