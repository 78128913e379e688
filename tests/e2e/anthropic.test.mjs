// The official @anthropic-ai/sdk against /anthropic/v1/messages on an Anthropic backend (fake
// upstream): non-streaming, streaming, tools, thinking, x-api-key injection (the client's key never
// forwarded), anthropic-version default, model override, count_tokens, usage in /metrics (cache
// read / creation, input tokens of a stream from message_start), Anthropic-format errors (529
// overloaded, non-JSON upstream errors, gateway-made errors), a mid-stream `event: error`, and
// every recorded Anthropic Messages case of the corpus replayed through the SDK.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFakeAnthropic, anthropicSSE, anthropicMessage, anthropicTextEvents, anthropicError, sseFromJsonl } from './lib/fake_anthropic.mjs';
import { splitSSE } from './lib/fake_openai.mjs';
import { startGateway, fetchT, T, CLIENT_KEY } from './lib/gateway.mjs';
import { assertSameBytes, assertNoClientKey, shutdownTest } from './lib/common.mjs';
import { parseProm, total, select } from './lib/prom.mjs';
import { providerYaml, anthropicClient, ANTHROPIC_UPSTREAM_KEY } from './lib/providers.mjs';
import { requireTestdata, listProviderCases, caseFile, sseDataObjects } from './lib/testdata.mjs';

let fake;
let gw;
let gwAuto;

before(async () => {
  fake = await startFakeAnthropic();
  gw = await startGateway({
    config: (g) => providerYaml({
      port: g.port,
      routes: [
        { model: 'claude-e2e', backends: [{ name: 'anth' }] },
        { model: 'claude-alias', backends: [{ name: 'anth', override: 'claude-real-model-20250101' }] },
        { model: 'claude-usage-cache', backends: [{ name: 'anth' }] },
        { model: 'claude-usage-stream', backends: [{ name: 'anth' }] },
        { model: 'claude-replay', backends: [{ name: 'anth' }] },
      ],
      backends: [{ name: 'anth', port: fake.port, schema: 'Anthropic', auth: { type: 'AnthropicAPIKey', key: ANTHROPIC_UPSTREAM_KEY } }],
    }),
  });
});
after(async () => {
  await gw?.close();
  await gwAuto?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const user = (content) => ({ role: 'user', content });
const plain = (o) => JSON.parse(JSON.stringify(o));

/** The upstream got /v1/messages with the configured x-api-key and nothing of the client's key. */
function assertAnthropicUpstream(rec, { path = '/v1/messages', key = ANTHROPIC_UPSTREAM_KEY } = {}) {
  assert.ok(rec, 'the upstream received the request');
  assert.equal(rec.method, 'POST');
  assert.equal(rec.path, path, 'upstream path');
  assert.equal(rec.headers['x-api-key'], key, 'x-api-key is the configured key');
  const xKeys = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if (rec.rawHeaders[i].toLowerCase() === 'x-api-key') xKeys.push(rec.rawHeaders[i + 1]);
  assert.equal(xKeys.length, 1, `exactly one x-api-key upstream: ${JSON.stringify(xKeys)}`);
  assertNoClientKey(rec);
  assert.ok(!rec.headers.authorization, `no Authorization forwarded to Anthropic: ${rec.headers.authorization}`);
  assert.ok(rec.headers['anthropic-version'], 'anthropic-version sent upstream');
}

async function metrics() {
  return parseProm(await gw.metricsText());
}

test('non-streaming message: SDK result, byte-identical bytes both ways, x-api-key injected', async () => {
  const client = anthropicClient(gw);
  const reply = anthropicMessage({ text: 'Paris is the capital of France.', model: 'claude-e2e-20250101', usage: { input_tokens: 14, output_tokens: 8 } });
  const replyBytes = Buffer.from(JSON.stringify(reply, null, 1));
  fake.enqueue({ body: replyBytes, headers: { 'request-id': 'req_e2e_anth_1' } });
  const { data, response } = await client.messages.create({
    model: 'claude-e2e', max_tokens: 100, system: 'Be brief.', messages: [user('What is the capital of France?')], temperature: 0.1,
  }).withResponse();
  assert.equal(response.status, 200);
  assert.deepEqual(plain(data), reply);
  assert.equal(response.headers.get('request-id'), 'req_e2e_anth_1', 'upstream response headers pass through');
  const rec = fake.requests[0];
  assertAnthropicUpstream(rec);
  assertSameBytes(rec.body, client.sent[0].body, 'request body forwarded unchanged');

  fake.enqueue({ body: replyBytes });
  const res = await client.messages.create({ model: 'claude-e2e', max_tokens: 100, messages: [user('again')] }).asResponse();
  assertSameBytes(Buffer.from(await res.arrayBuffer()), replyBytes, 'response body');
});

test('anthropic-version: 2023-06-01 by default, the client\'s own passes; Authorization from the client is not forwarded', async () => {
  const body = JSON.stringify({ model: 'claude-e2e', max_tokens: 10, messages: [user('v?')] });
  let res = await fetchT(`${gw.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` }, body });
  assert.equal(res.status, 200, await res.text());
  assertAnthropicUpstream(fake.requests[0]);
  assert.equal(fake.requests[0].headers['anthropic-version'], '2023-06-01', 'default anthropic-version');
  res = await fetchT(`${gw.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY, 'anthropic-version': '2023-01-01', 'anthropic-beta': 'e2e-beta-2025' }, body });
  assert.equal(res.status, 200, await res.text());
  assertAnthropicUpstream(fake.requests[1]);
  assert.equal(fake.requests[1].headers['anthropic-version'], '2023-01-01', 'client anthropic-version kept');
  assert.equal(fake.requests[1].headers['anthropic-beta'], 'e2e-beta-2025', 'anthropic-beta passes');
});

test('streaming message: SDK events equal the upstream events, raw SSE bytes identical, finalMessage', async () => {
  const client = anthropicClient(gw);
  const events = anthropicTextEvents({ pieces: ['Bon', 'jour', ' le', ' monde'], model: 'claude-e2e-20250101', input: 17, output: 9 });
  const sse = anthropicSSE(events);
  fake.enqueue({ chunks: splitSSE(sse), delayMs: 3 });
  const stream = await client.messages.create({ model: 'claude-e2e', max_tokens: 50, messages: [user('Say hello in French')], stream: true });
  const got = [];
  for await (const ev of stream) got.push(plain(ev));
  assert.deepEqual(got, events.filter((e) => e.type !== 'ping'));
  assertAnthropicUpstream(fake.requests[0]);
  assertSameBytes(fake.requests[0].body, client.sent[0].body, 'request body');

  fake.enqueue({ chunks: splitSSE(sse) });
  const res = await client.messages.create({ model: 'claude-e2e', max_tokens: 50, messages: [user('Say hello')], stream: true }).asResponse();
  assert.match(res.headers.get('content-type') || '', /^text\/event-stream/);
  assertSameBytes(Buffer.from(await res.arrayBuffer()), sse, 'SSE bytes');

  fake.enqueue({ chunks: splitSSE(sse) });
  const final = await client.messages.stream({ model: 'claude-e2e', max_tokens: 50, messages: [user('Say hello')] }).finalMessage();
  assert.equal(final.content[0].text, 'Bonjour le monde');
  assert.equal(final.usage.output_tokens, 9);
});

const weatherTool = {
  name: 'get_weather', description: 'Weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

test('tools: tool_use non-stream and streamed input_json_delta; tool_result turn forwarded as is', async () => {
  const client = anthropicClient(gw);
  const toolReply = anthropicMessage({
    stopReason: 'tool_use',
    content: [{ type: 'text', text: 'Let me check.' }, { type: 'tool_use', id: 'toolu_e2e_1', name: 'get_weather', input: { city: 'Paris' } }],
  });
  fake.enqueue({ body: toolReply });
  const msg = await client.messages.create({ model: 'claude-e2e', max_tokens: 100, tools: [weatherTool], tool_choice: { type: 'auto' }, messages: [user('Weather in Paris?')] });
  assert.equal(msg.stop_reason, 'tool_use');
  assert.deepEqual(msg.content[1], toolReply.content[1]);
  assert.deepEqual(JSON.parse(fake.requests[0].body).tools, [weatherTool]);

  const events = [
    { type: 'message_start', message: { id: 'msg_t', type: 'message', role: 'assistant', model: 'claude-e2e', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 30, output_tokens: 1 } } },
    { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_e2e_2', name: 'get_weather', input: {} } },
    { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"city": "Pa' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: 'ris"}' } },
    { type: 'content_block_stop', index: 0 },
    { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 12 } },
    { type: 'message_stop' },
  ];
  fake.enqueue({ chunks: splitSSE(anthropicSSE(events)), delayMs: 2 });
  const final = await client.messages.stream({ model: 'claude-e2e', max_tokens: 100, tools: [weatherTool], messages: [user('Weather?')] }).finalMessage();
  assert.equal(final.stop_reason, 'tool_use');
  assert.deepEqual(final.content[0], { type: 'tool_use', id: 'toolu_e2e_2', name: 'get_weather', input: { city: 'Paris' } });

  fake.enqueue({ body: anthropicMessage({ text: 'Sunny, 21 C.' }) });
  const turn = {
    model: 'claude-e2e', max_tokens: 100, tools: [weatherTool],
    messages: [user('Weather?'), { role: 'assistant', content: toolReply.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_e2e_1', content: '21 C, sunny' }] }],
  };
  const r3 = await client.messages.create(turn);
  assert.equal(r3.content[0].text, 'Sunny, 21 C.');
  assertSameBytes(fake.requests[2].body, client.sent[2].body, 'tool_result turn forwarded unchanged');
});

test('thinking: thinking blocks with signatures, non-stream and streamed (thinking_delta, signature_delta)', async () => {
  const client = anthropicClient(gw);
  const content = [
    { type: 'thinking', thinking: 'The user wants 2+2. That is 4.', signature: 'EqQBCkYIARgCIkB-sig-e2e' },
    { type: 'redacted_thinking', data: 'EmwKAhgBEgy-redacted' },
    { type: 'text', text: '4' },
  ];
  fake.enqueue({ body: anthropicMessage({ content }) });
  const msg = await client.messages.create({ model: 'claude-e2e', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [user('2+2?')] });
  assert.deepEqual(plain(msg.content), content);
  assert.deepEqual(JSON.parse(fake.requests[0].body).thinking, { type: 'enabled', budget_tokens: 1024 });

  const events = [
    { type: 'message_start', message: { id: 'msg_th', type: 'message', role: 'assistant', model: 'claude-e2e', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 40, output_tokens: 1 } } },
    { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Two plus two ' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'is four.' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'EqQBCkYIARgC-stream-sig' } },
    { type: 'content_block_stop', index: 0 },
    { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
    { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: '4' } },
    { type: 'content_block_stop', index: 1 },
    { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 30 } },
    { type: 'message_stop' },
  ];
  fake.enqueue({ chunks: splitSSE(anthropicSSE(events)) });
  const final = await client.messages.stream({ model: 'claude-e2e', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [user('2+2?')] }).finalMessage();
  assert.deepEqual(plain(final.content), [
    { type: 'thinking', thinking: 'Two plus two is four.', signature: 'EqQBCkYIARgC-stream-sig' },
    { type: 'text', text: '4' },
  ]);
});

test('modelNameOverride: the upstream body carries the override, everything else unchanged', async () => {
  const client = anthropicClient(gw);
  fake.enqueue({ body: anthropicMessage({ model: 'claude-real-model-20250101' }) });
  const msg = await client.messages.create({ model: 'claude-alias', max_tokens: 33, metadata: { user_id: 'u-1' }, messages: [user('override me')] });
  assert.equal(msg.model, 'claude-real-model-20250101');
  const got = JSON.parse(fake.requests[0].body);
  const sent = JSON.parse(client.sent[0].body);
  assert.equal(got.model, 'claude-real-model-20250101');
  assert.deepEqual({ ...got, model: sent.model }, sent);
  assertAnthropicUpstream(fake.requests[0]);
});

test('count_tokens: /anthropic/v1/messages/count_tokens reaches /v1/messages/count_tokens with x-api-key', async () => {
  const client = anthropicClient(gw);
  fake.enqueue({ body: { input_tokens: 1234 } });
  const r = await client.messages.countTokens({ model: 'claude-e2e', messages: [user('count me')], tools: [weatherTool] });
  assert.equal(r.input_tokens, 1234);
  assertAnthropicUpstream(fake.requests[0], { path: '/v1/messages/count_tokens' });
  assertSameBytes(fake.requests[0].body, client.sent[0].body, 'count_tokens body');
});

test('usage in /metrics: operation "messages", input incl. cache read and creation, cached_input, output; stream input tokens from message_start', async () => {
  const client = anthropicClient(gw);
  fake.enqueue({ body: anthropicMessage({ model: 'claude-usage-cache-resp', usage: { input_tokens: 100, cache_read_input_tokens: 2000, cache_creation_input_tokens: 300, output_tokens: 50 } }) });
  await client.messages.create({ model: 'claude-usage-cache', max_tokens: 10, messages: [user('cache')] });
  const events = anthropicTextEvents({ model: 'claude-usage-stream-resp', input: 25, cacheRead: 5, cacheCreation: 7, output: 13 });
  fake.enqueue({ chunks: splitSSE(anthropicSSE(events)) });
  const s = await client.messages.create({ model: 'claude-usage-stream', max_tokens: 10, messages: [user('stream')], stream: true });
  for await (const _ of s) { /* drain */ }
  await gw.settleLogs();
  const m = await metrics();
  const N = 'gen_ai_client_token_usage_token_sum';
  const cache = { gen_ai_operation_name: 'messages', gen_ai_original_model: 'claude-usage-cache' };
  assert.equal(total(m, N, { ...cache, gen_ai_token_type: 'input' }), 2400, 'input = input + cache read + cache creation');
  assert.equal(total(m, N, { ...cache, gen_ai_token_type: 'cached_input' }), 2000, 'cached_input = cache read');
  assert.equal(total(m, N, { ...cache, gen_ai_token_type: 'output' }), 50);
  const st = { gen_ai_operation_name: 'messages', gen_ai_original_model: 'claude-usage-stream' };
  assert.equal(total(m, N, { ...st, gen_ai_token_type: 'input' }), 37, 'stream input tokens (message_start, incl. cache) counted');
  assert.equal(total(m, N, { ...st, gen_ai_token_type: 'cached_input' }), 5);
  assert.equal(total(m, N, { ...st, gen_ai_token_type: 'output' }), 13, 'stream output tokens from message_delta');
  const log = gw.logs.find((l) => l.genai_model_name === 'claude-usage-stream');
  assert.ok(log, 'access log for the stream');
  assert.equal(log.genai_tokens_input, 37);
  assert.equal(log.genai_tokens_output, 13);
  assert.equal(log.genai_response_model, 'claude-usage-stream-resp');
});

test('usage in /metrics: cache creation tokens have their own token type', async () => {
  const m = await metrics();
  const N = 'gen_ai_client_token_usage_token_sum';
  const types = [...new Set(select(m, N, { gen_ai_original_model: 'claude-usage-cache' }).map((s) => s.labels.gen_ai_token_type))];
  const cc = select(m, N, { gen_ai_original_model: 'claude-usage-cache' }).filter((s) => /creation/.test(s.labels.gen_ai_token_type));
  assert.ok(cc.length >= 1, `a cache-creation token type in /metrics (have: ${types.join(', ')})`);
  assert.equal(cc.reduce((a, s) => a + s.value, 0), 300);
});

test('metrics provider name of an Anthropic backend is "anthropic"', async () => {
  const m = await metrics();
  const s = select(m, 'gen_ai_client_token_usage_token_sum', { gen_ai_original_model: 'claude-usage-cache' });
  assert.ok(s.length > 0);
  assert.deepEqual([...new Set(s.map((x) => x.labels.gen_ai_provider_name))], ['anthropic']);
});

/** Anthropic error envelope: { type: "error", error: { type, message } }. */
function assertAnthropicError(text, { type = null } = {}) {
  let j;
  try { j = JSON.parse(text); } catch { assert.fail(`error body is not JSON: ${text.slice(0, 200)}`); }
  assert.equal(j.type, 'error', `Anthropic error envelope: ${text.slice(0, 300)}`);
  assert.ok(j.error && typeof j.error.type === 'string' && j.error.type, `error.type: ${text.slice(0, 300)}`);
  assert.ok(typeof j.error.message === 'string' && j.error.message, `error.message: ${text.slice(0, 300)}`);
  if (type) assert.equal(j.error.type, type);
  return j;
}

test('errors: upstream 529 overloaded reaches the SDK as an APIError with the Anthropic body', async () => {
  const client = anthropicClient(gw);
  const body = anthropicError('overloaded_error', 'Overloaded');
  fake.enqueue({ status: 529, body });
  await assert.rejects(client.messages.create({ model: 'claude-e2e', max_tokens: 10, messages: [user('busy?')] }), (e) => {
    assert.equal(e.status, 529);
    assert.equal(e.error?.error?.type, 'overloaded_error');
    return true;
  });
  fake.enqueue({ status: 529, body });
  const res = await fetchT(`${gw.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude-e2e', max_tokens: 10, messages: [user('x')] }) });
  assert.equal(res.status, 529);
  assert.match(res.headers.get('content-type') || '', /application\/json/);
  assertAnthropicError(await res.text(), { type: 'overloaded_error' });
});

test('errors: a non-JSON upstream error becomes an Anthropic-format JSON error', async () => {
  fake.enqueue({ status: 502, contentType: 'text/html', body: '<html><body>502 Bad Gateway</body></html>' });
  const res = await fetchT(`${gw.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude-e2e', max_tokens: 10, messages: [user('x')] }) });
  const text = await res.text();
  assert.equal(res.status, 502, text);
  assert.match(res.headers.get('content-type') || '', /application\/json/);
  assertAnthropicError(text);
  const client = anthropicClient(gw);
  fake.enqueue({ status: 500, contentType: 'text/plain', body: 'upstream exploded' });
  await assert.rejects(client.messages.create({ model: 'claude-e2e', max_tokens: 10, messages: [user('x')] }), (e) => {
    assert.equal(e.status, 500);
    assert.equal(e.error?.type, 'error', `SDK saw an Anthropic error body: ${JSON.stringify(e.error)}`);
    return true;
  });
});

test('errors made by the gateway keep the Anthropic format: unknown model, invalid JSON, missing model', async () => {
  const cases = [
    { body: JSON.stringify({ model: 'no-such-claude', max_tokens: 5, messages: [user('x')] }), status: 404 },
    { body: '{"model": "claude-e2e", "messages": [', status: 400 },
    { body: JSON.stringify({ max_tokens: 5, messages: [user('x')] }), status: 400 },
  ];
  for (const c of cases) {
    const res = await fetchT(`${gw.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY }, body: c.body });
    const text = await res.text();
    assert.equal(res.status, c.status, `${c.body}: ${text}`);
    assertAnthropicError(text);
    assert.ok(!text.includes(CLIENT_KEY));
  }
  assert.equal(fake.requests.length, 0, 'nothing reached the upstream');
});

test('mid-stream `event: error` (overloaded_error) reaches the SDK as an error, not a clean end', async () => {
  const client = anthropicClient(gw);
  const head = anthropicTextEvents({ pieces: ['partial'] }).slice(0, 4);
  const sse = anthropicSSE(head) + `event: error\ndata: ${JSON.stringify(anthropicError('overloaded_error', 'Overloaded'))}\n\n`;
  fake.enqueue({ chunks: splitSSE(sse), delayMs: 5 });
  const stream = await client.messages.create({ model: 'claude-e2e', max_tokens: 10, messages: [user('x')], stream: true });
  const got = [];
  await assert.rejects((async () => { for await (const ev of stream) got.push(ev.type); })(), (e) => {
    assert.match(String(e.message), /overloaded/i);
    return true;
  });
  assert.ok(got.includes('content_block_delta'), `events before the error arrived: ${got}`);

  fake.enqueue({ chunks: splitSSE(sse) });
  const res = await fetchT(`${gw.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude-e2e', max_tokens: 10, stream: true, messages: [user('x')] }) });
  const text = await res.text();
  assert.ok(text.includes('event: error'), 'the error event reaches the client');
  assert.ok(!text.includes('message_stop'), 'no message_stop after the error');
});

test('upstream connection lost mid-stream: the SDK sees an error, not a complete message', async () => {
  const client = anthropicClient(gw);
  const events = anthropicTextEvents({ pieces: ['a', 'b', 'c'] });
  fake.enqueue({ chunks: splitSSE(anthropicSSE(events)), failAfterChunks: 4 });
  const stream = client.messages.stream({ model: 'claude-e2e', max_tokens: 10, messages: [user('x')] });
  await assert.rejects(stream.finalMessage());
});

test('auto-configuration from ANTHROPIC_API_KEY + ANTHROPIC_BASE_URL (no OpenAI key): messages reach the fake with x-api-key', async () => {
  gwAuto = await startGateway({ env: { ANTHROPIC_API_KEY: ANTHROPIC_UPSTREAM_KEY, ANTHROPIC_BASE_URL: `${fake.origin}/v1` } });
  const client = anthropicClient(gwAuto);
  const msg = await client.messages.create({ model: 'claude-any-model', max_tokens: 10, messages: [user('auto')] });
  assert.equal(msg.content[0].text, 'echo: auto');
  assertAnthropicUpstream(fake.requests[0]);
  assertSameBytes(fake.requests[0].body, client.sent[0].body, 'body');
});

// ---- Every recorded Anthropic Messages case replayed through the SDK ----

const REPLAYED = { cases: 0, interactions: 0, skipped: [] };

function anthropicReplayCases() {
  return listProviderCases('anthropic').filter((c) => c.interactions.length > 0 && c.interactions.every((it) =>
    (it.path === null || it.path === '/v1/messages' || it.path === '/v1/messages/count_tokens') && it.responseFile));
}

/** Recorded response -> { stream, bytes (what the fake sends), events (SDK-visible events) | json }. */
function recordedResponse(c, it) {
  const raw = caseFile(c, it.responseFile);
  if (it.responseFile.endsWith('.jsonl')) {
    const sse = Buffer.from(sseFromJsonl(raw));
    return { stream: true, bytes: sse };
  }
  if (it.responseFile.endsWith('.sse')) return { stream: true, bytes: raw };
  return { stream: false, bytes: raw };
}

/** The events the SDK yields for SSE text: every named event but ping (error throws), data parsed. */
function sdkEventsOf(buf) {
  const out = [];
  const text = Buffer.from(buf).toString('utf8');
  const blocks = text.split(/\r?\n\r?\n/);
  // An event not terminated by a blank line at the end of the body is never dispatched (SSE spec).
  if (!/\r?\n\r?\n$/.test(text)) blocks.pop();
  for (const block of blocks) {
    const lines = block.split(/\r?\n/);
    const ev = lines.find((l) => l.startsWith('event:'))?.slice(6).trim();
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
    if (ev && ev !== 'ping' && ev !== 'error' && data) out.push(JSON.parse(data));
  }
  return out;
}

test('recorded Anthropic cases replayed through @anthropic-ai/sdk: bodies forwarded unchanged, responses identical', async (t) => {
  if (!requireTestdata(t)) return;
  const cases = anthropicReplayCases();
  assert.ok(cases.length > 50, `found ${cases.length} replayable cases`);
  const client = anthropicClient(gw);
  const failures = [];
  for (const c of cases) {
    let ok = true;
    for (const it of c.interactions) {
      const resp = recordedResponse(c, it);
      const reqRaw = caseFile(c, it.requestFile);
      let params = reqRaw ? JSON.parse(reqRaw.toString('utf8')) : { max_tokens: 64, messages: [user('replay')] };
      params = { ...params, model: 'claude-replay' };
      if (resp.stream && it.path !== '/v1/messages/count_tokens') params.stream = true;
      const headers = {};
      if (it.requestHeaders && it.requestHeaders['anthropic-beta']) headers['anthropic-beta'] = it.requestHeaders['anthropic-beta'];
      fake.reset();
      if (resp.stream) fake.enqueue({ status: it.status, contentType: 'text/event-stream', chunks: splitSSE(resp.bytes) });
      else fake.enqueue({ status: it.status, contentType: 'application/json', body: resp.bytes });
      const sentBefore = client.sent.length;
      try {
        if (it.path === '/v1/messages/count_tokens') {
          const r = await client.messages.countTokens(params, { headers });
          assert.deepEqual(plain(r), JSON.parse(resp.bytes));
        } else if (it.status !== 200) {
          await assert.rejects(client.messages.create(params, { headers }), (e) => {
            assert.equal(e.status, it.status);
            assert.deepEqual(e.error, JSON.parse(resp.bytes));
            return true;
          });
        } else if (resp.stream) {
          const s = await client.messages.create(params, { headers });
          const got = [];
          for await (const ev of s) got.push(plain(ev));
          assert.deepEqual(got, sdkEventsOf(resp.bytes));
        } else {
          const data = await client.messages.create(params, { headers });
          assert.deepEqual(plain(data), JSON.parse(resp.bytes));
        }
        const rec = fake.requests[0];
        assertAnthropicUpstream(rec, { path: it.path || '/v1/messages' });
        assertSameBytes(rec.body, client.sent[sentBefore].body, 'forwarded body');
        if (headers['anthropic-beta']) assert.equal(rec.headers['anthropic-beta'], headers['anthropic-beta']);
        REPLAYED.interactions++;
      } catch (e) {
        ok = false;
        failures.push(`${c.category}/${c.name}#${it.index}: ${String(e.message).split('\n').slice(0, 3).join(' | ')}`);
        break;
      }
    }
    if (ok) REPLAYED.cases++;
  }
  t.diagnostic(`anthropic: ${REPLAYED.cases}/${cases.length} cases (${REPLAYED.interactions} interactions) replayed`);
  assert.deepEqual(failures, [], `${failures.length} recorded cases failed`);
});

test('recorded Anthropic streams: raw SSE bytes reach the client unchanged', async (t) => {
  if (!requireTestdata(t)) return;
  let n = 0;
  for (const c of anthropicReplayCases()) {
    for (const it of c.interactions) {
      const resp = recordedResponse(c, it);
      if (!resp.stream || it.status !== 200) continue;
      fake.reset();
      fake.enqueue({ contentType: 'text/event-stream', chunks: splitSSE(resp.bytes) });
      const res = await fetchT(`${gw.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude-replay', max_tokens: 16, stream: true, messages: [user('raw')] }) });
      assertSameBytes(Buffer.from(await res.arrayBuffer()), resp.bytes, `${c.name} SSE bytes`);
      n++;
    }
  }
  t.diagnostic(`${n} recorded streams compared byte for byte`);
  assert.ok(n >= 10);
});

test('gateway-translation anthropic cases: request passthrough and response as expected', async (t) => {
  if (!requireTestdata(t)) return;
  const fs = await import('node:fs');
  const path = await import('node:path');
  const { TESTDATA_DIR } = await import('./lib/testdata.mjs');
  const dir = path.join(TESTDATA_DIR, 'providers', 'gateway-translation', 'anthropic');
  let n = 0;
  for (const name of fs.readdirSync(dir).sort()) {
    const d = path.join(dir, name);
    const meta = JSON.parse(fs.readFileSync(path.join(d, 'meta.json'), 'utf8'));
    if (/gzip/.test(name)) continue; // content-encoding covered by compression.test.mjs
    const req = fs.readFileSync(path.join(d, meta.files.requestBody));
    const respFile = meta.files.responseBody;
    const upstream = fs.readFileSync(path.join(d, respFile));
    fake.reset();
    const stream = /\.sse|sse-lines/.test(respFile);
    fake.enqueue(stream ? { chunks: splitSSE(upstream), contentType: 'text/event-stream' } : { body: upstream });
    const body = JSON.parse(req);
    body.model = 'claude-replay';
    const res = await fetchT(`${gw.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    assert.equal(res.status, meta.client_expected_status || 200, text);
    assertAnthropicUpstream(fake.requests[0]);
    if (!stream) assert.deepEqual(JSON.parse(text), JSON.parse(upstream));
    else assertSameBytes(Buffer.from(text), upstream, name);
    n++;
  }
  t.diagnostic(`gateway-translation/anthropic: ${n} cases replayed`);
});

test('the gateway never logged a key', async () => {
  await gw.settleLogs();
  const logs = JSON.stringify(gw.logs) + gw.stderr + gw.nonJsonStdout.join('\n');
  assert.ok(!logs.includes(ANTHROPIC_UPSTREAM_KEY), 'upstream key in logs');
  assert.ok(!logs.includes(CLIENT_KEY), 'client key in logs');
  const m = await gw.metricsText();
  assert.ok(!m.includes(ANTHROPIC_UPSTREAM_KEY) && !m.includes(CLIENT_KEY));
  await sleep(0);
});

shutdownTest(() => [gw, gwAuto]);
