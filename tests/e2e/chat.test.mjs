// Chat completions through the gateway with the official openai SDK: non-streaming, streaming with
// usage, tools, and every recorded OpenAI chat case replayed byte for byte in both directions.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeOpenAI, splitSSE } from './lib/fake_openai.mjs';
import { startGateway, openaiEnv, T, UPSTREAM_KEY } from './lib/gateway.mjs';
import {
  assertUpstreamRequest, assertSameBytes, assertNoClientKey, replayRaw, shutdownTest,
} from './lib/common.mjs';
import {
  fixture, fixtureJSON, requireTestdata, chatReplayCases, caseFile, sseDataObjects,
} from './lib/testdata.mjs';

let fake;
let gw;

before(async () => {
  fake = await startFakeOpenAI();
  gw = await startGateway({ env: openaiEnv(fake, { OPENAI_ORG_ID: 'org-e2e-123', OPENAI_PROJECT_ID: 'proj_e2e_456' }) });
});
after(async () => {
  await gw?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const question = { role: 'user', content: 'What is the capital of France?' };

test('non-streaming chat: SDK result, byte-identical response, what the upstream got', async () => {
  const client = gw.client();
  fake.enqueue({ body: fixture('chat.json'), headers: { 'x-request-id': 'req_e2e_chat_1', 'openai-processing-ms': '12' } });
  const params = { model: 'gpt-e2e', messages: [question], temperature: 0.2 };
  const { data, response } = await client.chat.completions.create(params).withResponse();
  assert.equal(response.status, 200);
  assert.deepEqual(JSON.parse(JSON.stringify(data)), fixtureJSON('chat.json'));
  assert.equal(data.choices[0].message.content, 'Paris is the capital of France.');
  assert.equal(data.usage.prompt_tokens, 13);
  assert.match(response.headers.get('content-type'), /^application\/json/);
  assert.equal(response.headers.get('x-request-id'), 'req_e2e_chat_1', 'upstream response headers pass through');
  assert.equal(response.headers.get('openai-processing-ms'), '12');

  assert.equal(fake.requests.length, 1);
  const rec = fake.requests[0];
  assertUpstreamRequest(rec, { path: '/v1/chat/completions', sent: client.sent[0].body });
  assert.equal(rec.headers['openai-organization'], 'org-e2e-123', 'OPENAI_ORG_ID -> OpenAI-Organization');
  assert.equal(rec.headers['openai-project'], 'proj_e2e_456', 'OPENAI_PROJECT_ID -> OpenAI-Project');
  assert.match(rec.headers['content-type'] || '', /application\/json/);
});

test('non-streaming chat: raw response bytes equal the upstream bytes', async () => {
  const client = gw.client();
  fake.enqueue({ body: fixture('chat.json') });
  const res = await client.chat.completions.create({ model: 'gpt-e2e', messages: [question] }).asResponse();
  assertSameBytes(Buffer.from(await res.arrayBuffer()), fixture('chat.json'), 'response body');
  assertSameBytes(fake.requests[0].body, client.sent[0].body, 'request body');
});

test('streaming chat with include_usage: SDK chunks, usage chunk, raw bytes identical', async () => {
  const client = gw.client();
  const sse = fixture('chat_stream.sse');
  fake.enqueue({ chunks: splitSSE(sse), delayMs: 5 });
  const stream = await client.chat.completions.create({
    model: 'gpt-e2e', messages: [question], stream: true, stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const ch of stream) chunks.push(ch);
  assert.deepEqual(JSON.parse(JSON.stringify(chunks)), sseDataObjects(sse));
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Bonjour le monde');
  assert.deepEqual(chunks.at(-1).usage.prompt_tokens, 17);
  assert.deepEqual(chunks.at(-1).usage.completion_tokens, 9);
  assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: client.sent[0].body });

  // The same stream read as raw bytes.
  fake.enqueue({ chunks: splitSSE(sse) });
  const res = await client.chat.completions.create({
    model: 'gpt-e2e', messages: [question], stream: true, stream_options: { include_usage: true },
  }).asResponse();
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  assertSameBytes(Buffer.from(await res.arrayBuffer()), sse, 'SSE bytes');
});

test('streaming chat without include_usage still works and the body is forwarded intact', async () => {
  const client = gw.client();
  const stream = await client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'hi' }], stream: true });
  let text = '';
  for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'echo: hi');
  assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: client.sent[0].body, allowIncludeUsage: true });
});

test('tools: tool call returned intact, tool definitions forwarded byte-identical', async () => {
  const client = gw.client();
  fake.enqueue({ body: fixture('chat_tools.json') });
  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather for a city',
      parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city'] },
    },
  }];
  const r = await client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'Weather in Lyon?' }], tools, tool_choice: 'auto' });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const call = r.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Lyon', unit: 'celsius' });
  assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: client.sent[0].body });
  assert.deepEqual(JSON.parse(fake.requests[0].body).tools, tools);

  // Second turn with the tool result.
  fake.enqueue({ body: fixture('chat.json') });
  const r2 = await client.chat.completions.create({
    model: 'gpt-e2e',
    messages: [
      { role: 'user', content: 'Weather in Lyon?' },
      r.choices[0].message,
      { role: 'tool', tool_call_id: call.id, content: '{"temp":21}' },
    ],
    tools,
  });
  assert.equal(r2.choices[0].message.role, 'assistant');
  assertUpstreamRequest(fake.requests[1], { path: '/v1/chat/completions', sent: client.sent[1].body });
});

test('tools streaming: tool call deltas assembled by the SDK', async () => {
  const client = gw.client();
  const sse = fixture('chat_tools_stream.sse');
  fake.enqueue({ chunks: splitSSE(sse), delayMs: 5 });
  const runner = client.chat.completions.stream({
    model: 'gpt-e2e',
    messages: [{ role: 'user', content: 'time?' }],
    tools: [{ type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } }],
    stream_options: { include_usage: true },
  });
  const final = await runner.finalChatCompletion();
  const call = final.choices[0].message.tool_calls[0];
  assert.equal(call.id, 'call_e2e_time');
  assert.equal(call.function.name, 'get_time');
  assert.deepEqual(JSON.parse(call.function.arguments), { tz: 'Europe/Paris' });
  assert.equal(final.usage.prompt_tokens, 44);
  assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: client.sent[0].body });
});

test('request body with odd formatting and unicode is forwarded byte-identical', async () => {
  // Pretty-printed, unusual spacing, escaped and raw non-ASCII, big integers and float precision:
  // a gateway that re-serializes JSON would change some of these bytes.
  const body = Buffer.from('{\n\t"model" :  "gpt-e2e",\r\n  "messages":[{"role":"user","content":"caf\\u00e9 \u00e9t\u00e9 \ud83d\ude00 \\"q\\" \\/"}],\n' +
    '  "seed": 12345678901234567890, "temperature": 0.10000000000000000555, "top_p": 1e0, "metadata": {"k": "v"}, "n": 1\n}\n');
  const client = gw.client();
  fake.enqueue({ body: fixture('chat.json') });
  const res = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-e2e-client-should-not-leak-1234' },
    body,
    signal: AbortSignal.timeout(T(10_000)),
  });
  assert.equal(res.status, 200);
  assertSameBytes(Buffer.from(await res.arrayBuffer()), fixture('chat.json'));
  assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: body });
  void client;
});

test('client Authorization is replaced, never forwarded; other client headers do not carry the key', async () => {
  const client = gw.client({ defaultHeaders: { 'x-custom-e2e': 'kept-or-dropped' } });
  await client.chat.completions.create({ model: 'gpt-e2e', messages: [question] });
  const rec = fake.requests[0];
  assert.equal(rec.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
  assertNoClientKey(rec);
});

test('recorded OpenAI chat cases replay byte-exact (raw) and parse identically (SDK)', async (t) => {
  if (!requireTestdata(t)) return;
  const cases = chatReplayCases();
  assert.ok(cases.length >= 20, `expected many recorded chat cases, found ${cases.length}`);
  for (const c of cases) {
    await t.test(`${c.category}/${c.name}`, async () => {
      for (const it of c.interactions) {
        const responseBytes = caseFile(c, it.responseFile);
        let requestBytes = caseFile(c, it.requestFile);
        let reqJSON;
        if (requestBytes) {
          reqJSON = JSON.parse(requestBytes.toString('utf8'));
        } else {
          reqJSON = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `replay ${c.name}` }] };
          if (it.stream) Object.assign(reqJSON, { stream: true, stream_options: { include_usage: true } });
          requestBytes = Buffer.from(JSON.stringify(reqJSON));
        }
        const askedUsage = !!(reqJSON.stream_options && reqJSON.stream_options.include_usage);
        const ct = it.contentType;

        // 1. Raw bytes both ways.
        fake.reset();
        const { res, bytes, rec } = await replayRaw(gw, fake, {
          path: '/v1/chat/completions', requestBytes, status: it.status, contentType: ct, responseBytes, stream: it.stream,
        });
        assert.equal(res.status, it.status);
        assert.equal(res.headers.get('content-type'), ct, 'content-type passes through');
        assertSameBytes(bytes, responseBytes, 'response bytes');
        assertUpstreamRequest(rec, { path: '/v1/chat/completions', sent: requestBytes, allowIncludeUsage: it.stream && !askedUsage });

        // 2. Through the SDK: the parsed result equals the recorded one.
        fake.reset();
        const client = gw.client();
        fake.enqueue(it.stream ? { chunks: splitSSE(responseBytes), contentType: ct } : { body: responseBytes, contentType: ct });
        const params = { ...reqJSON, stream: it.stream };
        if (it.stream) {
          const stream = await client.chat.completions.create(params);
          const got = [];
          for await (const ch of stream) got.push(ch);
          assert.deepEqual(JSON.parse(JSON.stringify(got)), sseDataObjects(responseBytes));
        } else {
          if (params.stream === false && reqJSON.stream === undefined) delete params.stream;
          const got = await client.chat.completions.create(params);
          assert.deepEqual(JSON.parse(JSON.stringify(got)), JSON.parse(responseBytes.toString('utf8')));
        }
        assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: client.sent[0].body, allowIncludeUsage: it.stream && !askedUsage });
      }
    });
  }
});

test('every request produced one JSON access-log line on stdout and nothing else', async () => {
  assert.deepEqual(gw.nonJsonStdout, [], 'stdout carries only JSON access-log lines');
  await gw.waitForLogs(1);
  for (const l of gw.logs) {
    const s = JSON.stringify(l);
    assert.ok(!s.includes(UPSTREAM_KEY) && !s.includes('sk-e2e-client'), `access log leaks a key: ${s}`);
  }
});

shutdownTest(() => [gw]);
