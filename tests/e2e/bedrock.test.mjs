// AWS Bedrock through the gateway, against a fake Bedrock runtime that verifies the SigV4 signature
// of every request it receives (recomputed in JS; lib/sigv4.mjs) and answers with JSON or binary
// event-streams (lib/aws_eventstream.mjs):
//   - openai SDK -> AWSBedrock (Converse / ConverseStream): request shape (system, messages,
//     toolConfig, inferenceConfig), model ids with ':' in the path, non-stream and stream answers,
//     reasoning (reasoning_content string + thinking_blocks), an exception frame mid-stream raising
//     in the SDK, Bedrock errors in OpenAI format, recorded Converse responses and streams replayed;
//   - @anthropic-ai/sdk -> AWSAnthropic (InvokeModel / InvokeModelWithResponseStream): body with
//     anthropic_version and without model, the event-stream unwrapped back into Anthropic SSE;
//   - /metrics: provider name aws.bedrock, token usage.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startFakeBedrock, converseResponse, converseTextEvents, converseStreamSpec, eventstreamBytesSpec, invokeStreamSpec, bedrockErrorSpec, EVENTSTREAM,
} from './lib/fake_bedrock.mjs';
import { anthropicMessage, anthropicTextEvents } from './lib/fake_anthropic.mjs';
import { converseEventFrame, invokeChunkFrame, decodeFrames } from './lib/aws_eventstream.mjs';
import { verifySigV4, signForTest } from './lib/sigv4.mjs';
import { startGateway, fetchT, CLIENT_KEY, parseErrorEnvelope } from './lib/gateway.mjs';
import { assertNoClientKey, shutdownTest } from './lib/common.mjs';
import { parseProm, total, select } from './lib/prom.mjs';
import { providerYaml, anthropicClient, AWS_KEYS, credsMap, credentialsFileText, cleanAwsEnv } from './lib/providers.mjs';
import { requireTestdata, listProviderCases, caseFile, TESTDATA_DIR, sseDataObjects } from './lib/testdata.mjs';

const REGION = 'eu-west-3';
const LLAMA = 'us.meta.llama3-2-1b-instruct-v1:0';
const NOVA = 'us.amazon.nova-micro-v1:0';
const CLAUDE_CONVERSE = 'anthropic.claude-3-7-sonnet-20250219-v1:0';
const CLAUDE_INVOKE = 'anthropic.claude-3-5-sonnet-20241022-v2:0';
const KEY = AWS_KEYS.secret;

let fake;
let gw;
const allRequests = [];

before(async () => {
  fake = await startFakeBedrock({ creds: credsMap(KEY), region: REGION });
  const auth = { type: 'AWSCredentials', region: REGION, credentialsFile: { text: credentialsFileText({ default: KEY }) } };
  gw = await startGateway({
    env: cleanAwsEnv(),
    config: (g) => providerYaml({
      port: g.port,
      routes: [
        { model: LLAMA, backends: [{ name: 'bedrock' }] },
        { model: NOVA, backends: [{ name: 'bedrock' }] },
        { model: CLAUDE_CONVERSE, backends: [{ name: 'bedrock' }] },
        { model: 'bedrock-usage', backends: [{ name: 'bedrock' }] },
        { model: 'bedrock-replay', backends: [{ name: 'bedrock' }] },
        { model: 'bedrock-alias', backends: [{ name: 'bedrock', override: 'cohere.command-r-v1:0' }] },
        { model: CLAUDE_INVOKE, backends: [{ name: 'awsanth' }] },
        { model: 'claude-invoke-replay', backends: [{ name: 'awsanth', override: CLAUDE_INVOKE }] },
      ],
      backends: [
        { name: 'bedrock', port: fake.port, schema: 'AWSBedrock', auth },
        { name: 'awsanth', backendRef: 'bedrock', schema: 'AWSAnthropic', version: 'bedrock-2023-05-31', auth },
      ],
    }),
  });
});
after(async () => {
  await gw?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());
afterEach(() => { allRequests.push(...fake.requests); });

const enc = (model) => encodeURIComponent(model).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
const user = (content) => ({ role: 'user', content });

/** The request was signed correctly with the BSP's key for the BSP's region, and carries no client key. */
function assertSigned(rec) {
  assert.ok(rec, 'the fake Bedrock received the request');
  assert.ok(rec.sigv4, `no signature check: ${rec.inspectError}`);
  assert.deepEqual(rec.sigv4.reasons, [], `SigV4 of ${rec.path} verifies`);
  assert.equal(rec.sigv4.keyId, KEY.keyId);
  assert.equal(rec.sigv4.region, REGION, 'region from the BackendSecurityPolicy');
  assert.equal(rec.sigv4.service, 'bedrock');
  assertNoClientKey(rec);
}

function assertPath(rec, model, action) {
  assert.equal(rec.path, `/model/${enc(model)}/${action}`, 'model percent-encoded in the path');
  assert.equal(rec.model.model, model);
}

test('the SigV4 verifier itself: accepts a correct signature, rejects tampered body, path, key and region', () => {
  const body = Buffer.from('{"messages":[]}');
  const p = '/model/us.meta.llama3-2-1b-instruct-v1%3A0/converse';
  const headers = signForTest({ method: 'POST', path: p, headers: { host: 'bedrock-runtime.eu-west-3.amazonaws.com', 'content-type': 'application/json' }, body, keyId: KEY.keyId, secret: KEY.secret, region: REGION });
  const raw = Object.entries(headers).flat();
  const ok = verifySigV4({ method: 'POST', path: p, rawHeaders: raw, body }, credsMap(KEY), { region: REGION });
  assert.deepEqual(ok.reasons, []);
  assert.match(ok.canonicalRequest, /%253A0/, 'the canonical URI encodes the path once more');
  assert.ok(!verifySigV4({ method: 'POST', path: p, rawHeaders: raw, body: Buffer.from('{"messages":[1]}') }, credsMap(KEY), { region: REGION }).ok);
  assert.ok(!verifySigV4({ method: 'POST', path: p.replace('%3A', ':'), rawHeaders: raw, body }, credsMap(KEY), { region: REGION }).ok);
  assert.ok(!verifySigV4({ method: 'POST', path: p, rawHeaders: raw, body }, { [KEY.keyId]: { secret: 'wrong' } }, { region: REGION }).ok);
  assert.ok(!verifySigV4({ method: 'POST', path: p, rawHeaders: raw, body }, credsMap(KEY), { region: 'us-east-1' }).ok);
});

test('Converse request shape: system, messages, inferenceConfig; signed; model id with ":" percent-encoded', async () => {
  const client = gw.client();
  fake.enqueue({ body: converseResponse({ text: 'Bonjour', input: 20, output: 3 }) });
  const r = await client.chat.completions.create({
    model: LLAMA, temperature: 0.4, top_p: 0.8, max_completion_tokens: 321, stop: ['STOP', 'END'],
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'developer', content: 'Answer in French.' },
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Hi' },
      { role: 'user', content: [{ type: 'text', text: 'Say bonjour' }] },
    ],
  });
  const rec = fake.requests[0];
  assertSigned(rec);
  assertPath(rec, LLAMA, 'converse');
  assert.ok(!rec.headers['x-api-key']);
  const b = rec.json;
  assert.deepEqual(b.system, [{ text: 'You are terse.' }, { text: 'Answer in French.' }]);
  assert.deepEqual(b.messages, [
    { role: 'user', content: [{ text: 'Hello' }] },
    { role: 'assistant', content: [{ text: 'Hi' }] },
    { role: 'user', content: [{ text: 'Say bonjour' }] },
  ]);
  assert.deepEqual(b.inferenceConfig, { temperature: 0.4, topP: 0.8, maxTokens: 321, stopSequences: ['STOP', 'END'] });
  assert.ok(!('model' in b) && !('stream' in b), 'no model / stream in a Converse body');

  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, LLAMA, 'the response model is the request model');
  assert.equal(r.choices[0].message.content, 'Bonjour');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.deepEqual([r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens], [20, 3, 23]);
});

test('images: a data URI becomes a Converse image block; a remote URL is refused in OpenAI format before any upstream call', async () => {
  const client = gw.client();
  const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex').toString('base64');
  await client.chat.completions.create({ model: NOVA, messages: [{ role: 'user', content: [
    { type: 'text', text: 'What is this?' },
    { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
  ] }] });
  const rec = fake.requests[0];
  assertSigned(rec);
  assert.deepEqual(rec.json.messages[0].content, [{ text: 'What is this?' }, { image: { format: 'png', source: { bytes: png } } }]);
  const n = fake.requests.length;
  await assert.rejects(client.chat.completions.create({ model: NOVA, messages: [{ role: 'user', content: [
    { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] }), (e) => {
    assert.equal(e.status, 400);
    return true;
  });
  assert.equal(fake.requests.length, n, 'nothing sent upstream');
});

test('modelNameOverride goes into the path (and is signed as such)', async () => {
  const client = gw.client();
  await client.chat.completions.create({ model: 'bedrock-alias', messages: [user('x')] });
  assertSigned(fake.requests[0]);
  assertPath(fake.requests[0], 'cohere.command-r-v1:0', 'converse');
});

const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];

test('tools: toolConfig, tool_choice, assistant tool_calls -> toolUse, tool results -> toolResult in one user turn; toolUse answer -> tool_calls', async () => {
  const client = gw.client();
  fake.enqueue({ body: converseResponse({ stopReason: 'tool_use', content: [{ text: 'Checking.' }, { toolUse: { toolUseId: 'tooluse_e2e_1', name: 'get_weather', input: { city: 'Paris' } } }] }) });
  const r = await client.chat.completions.create({ model: CLAUDE_CONVERSE, tools, tool_choice: 'required', messages: [user('Weather in Paris?')] });
  assertSigned(fake.requests[0]);
  assert.deepEqual(fake.requests[0].json.toolConfig, {
    tools: [{ toolSpec: { name: 'get_weather', description: 'Weather of a city', inputSchema: { json: tools[0].function.parameters } } }],
    toolChoice: { any: {} },
  });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const tc = r.choices[0].message.tool_calls;
  assert.deepEqual(tc.map((t) => [t.id, t.type, t.function.name, JSON.parse(t.function.arguments)]), [['tooluse_e2e_1', 'function', 'get_weather', { city: 'Paris' }]]);
  assert.equal(r.choices[0].message.content, 'Checking.');

  for (const [choice, expected] of [['auto', { auto: {} }], [{ type: 'function', function: { name: 'get_weather' } }, { tool: { name: 'get_weather' } }]]) {
    await client.chat.completions.create({ model: CLAUDE_CONVERSE, tools, tool_choice: choice, messages: [user('x')] });
    assert.deepEqual(fake.last().json.toolConfig.toolChoice, expected);
  }

  await client.chat.completions.create({
    model: CLAUDE_CONVERSE, tools,
    messages: [
      user('Weather in Paris and Oslo?'),
      { role: 'assistant', content: null, tool_calls: [
        { id: 'tu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        { id: 'tu_2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'tu_1', content: '21 C' },
      { role: 'tool', tool_call_id: 'tu_2', content: '5 C' },
    ],
  });
  const m = fake.last().json.messages;
  assertSigned(fake.last());
  assert.equal(m.length, 3, `tool results merged into one user message: ${JSON.stringify(m)}`);
  assert.deepEqual(m[1].content.filter((c) => c.toolUse).map((c) => c.toolUse), [
    { toolUseId: 'tu_1', name: 'get_weather', input: { city: 'Paris' } },
    { toolUseId: 'tu_2', name: 'get_weather', input: { city: 'Oslo' } },
  ]);
  assert.equal(m[2].role, 'user');
  assert.deepEqual(m[2].content.map((c) => [c.toolResult.toolUseId, c.toolResult.content.map((x) => x.text).join('')]), [['tu_1', '21 C'], ['tu_2', '5 C']]);
});

test('streaming: ConverseStream frames cut at arbitrary byte boundaries -> OpenAI chunks, usage chunk, [DONE]', async () => {
  const client = gw.client();
  fake.enqueue(converseStreamSpec(converseTextEvents({ pieces: ['Hel', 'lo ', 'world'], input: 9, output: 4, cacheRead: 3 }), { cut: true }));
  const s = await client.chat.completions.create({ model: NOVA, stream: true, stream_options: { include_usage: true }, messages: [user('hi')] });
  let text = '';
  let finish = null;
  let usage = null;
  let role = null;
  for await (const c of s) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.model, NOVA);
    for (const ch of c.choices) {
      text += ch.delta?.content || '';
      role ||= ch.delta?.role;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    if (c.usage) usage = c.usage;
  }
  assertSigned(fake.requests[0]);
  assertPath(fake.requests[0], NOVA, 'converse-stream');
  assert.equal(role, 'assistant');
  assert.equal(text, 'Hello world');
  assert.equal(finish, 'stop');
  assert.equal(usage.prompt_tokens, 12, 'prompt tokens include cache reads');
  assert.equal(usage.completion_tokens, 4);
  assert.equal(usage.prompt_tokens_details?.cached_tokens, 3);

  fake.enqueue(converseStreamSpec(converseTextEvents()));
  const res = await fetchT(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` }, body: JSON.stringify({ model: NOVA, stream: true, messages: [user('hi')] }) });
  const raw = await res.text();
  assert.match(res.headers.get('content-type') || '', /^text\/event-stream/);
  assert.ok(raw.trimEnd().endsWith('data: [DONE]'), 'ends with [DONE]');
});

test('streaming tool use: contentBlockStart.toolUse + toolUse.input deltas -> tool_call deltas', async () => {
  const client = gw.client();
  const events = [
    { messageStart: { role: 'assistant' } },
    { contentBlockStart: { contentBlockIndex: 0, start: { toolUse: { toolUseId: 'tooluse_s1', name: 'get_weather' } } } },
    { contentBlockDelta: { contentBlockIndex: 0, delta: { toolUse: { input: '{"city":' } } } },
    { contentBlockDelta: { contentBlockIndex: 0, delta: { toolUse: { input: '"Paris"}' } } } },
    { contentBlockStop: { contentBlockIndex: 0 } },
    { messageStop: { stopReason: 'tool_use' } },
    { metadata: { usage: { inputTokens: 30, outputTokens: 10, totalTokens: 40 } } },
  ];
  fake.enqueue(converseStreamSpec(events));
  const final = await client.chat.completions.stream({ model: CLAUDE_CONVERSE, tools, messages: [user('Weather?')] }).finalChatCompletion();
  assertSigned(fake.requests[0]);
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  const tc = final.choices[0].message.tool_calls;
  assert.deepEqual(tc.map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)]), [['tooluse_s1', 'get_weather', { city: 'Paris' }]]);
});

test('reasoning: reasoningContent -> message.reasoning_content (string) + thinking_blocks; stream deltas likewise; thinking forwarded', async () => {
  const client = gw.client();
  fake.enqueue({ body: converseResponse({ content: [
    { reasoningContent: { reasoningText: { text: 'Two plus two is four.', signature: 'sig-bedrock-1' } } },
    { reasoningContent: { redactedContent: 'cmVkYWN0ZWQ=' } },
    { text: '4' },
  ] }) });
  const r = await client.chat.completions.create({ model: CLAUDE_CONVERSE, messages: [user('2+2?')], thinking: { type: 'enabled', budget_tokens: 1024 } });
  assertSigned(fake.requests[0]);
  assert.deepEqual(fake.requests[0].json.additionalModelRequestFields?.thinking, { type: 'enabled', budget_tokens: 1024 });
  const m = r.choices[0].message;
  assert.equal(m.content, '4');
  assert.equal(m.reasoning_content, 'Two plus two is four.');
  assert.ok(Array.isArray(m.thinking_blocks));
  assert.deepEqual(m.thinking_blocks.find((b) => b.type === 'thinking'), { type: 'thinking', thinking: 'Two plus two is four.', signature: 'sig-bedrock-1' });
  assert.ok(m.thinking_blocks.some((b) => b.type === 'redacted_thinking' && b.data === 'cmVkYWN0ZWQ='));

  const events = [
    { messageStart: { role: 'assistant' } },
    { contentBlockDelta: { contentBlockIndex: 0, delta: { reasoningContent: { text: 'Think' } } } },
    { contentBlockDelta: { contentBlockIndex: 0, delta: { reasoningContent: { text: 'ing.' } } } },
    { contentBlockDelta: { contentBlockIndex: 0, delta: { reasoningContent: { signature: 'sig-stream-b' } } } },
    { contentBlockStop: { contentBlockIndex: 0 } },
    { contentBlockDelta: { contentBlockIndex: 1, delta: { text: '4' } } },
    { contentBlockStop: { contentBlockIndex: 1 } },
    { messageStop: { stopReason: 'end_turn' } },
    { metadata: { usage: { inputTokens: 5, outputTokens: 6, totalTokens: 11 } } },
  ];
  fake.enqueue(converseStreamSpec(events));
  const s = await client.chat.completions.create({ model: CLAUDE_CONVERSE, stream: true, messages: [user('2+2?')] });
  let reasoning = '';
  let text = '';
  const blocks = [];
  for await (const c of s) {
    for (const ch of c.choices) {
      const d = ch.delta || {};
      if (d.reasoning_content !== undefined) {
        assert.equal(typeof d.reasoning_content, 'string', `delta.reasoning_content is a string: ${JSON.stringify(d)}`);
        reasoning += d.reasoning_content;
      }
      if (d.thinking_blocks) blocks.push(...d.thinking_blocks);
      text += d.content || '';
    }
  }
  assert.equal(reasoning, 'Thinking.');
  assert.equal(text, '4');
  assert.ok(blocks.some((b) => b.signature === 'sig-stream-b'), `signature in delta.thinking_blocks: ${JSON.stringify(blocks)}`);
});

test('exception frame mid-stream (throttlingException): the openai SDK raises after the earlier text; no [DONE]', async () => {
  const client = gw.client();
  fake.enqueue(converseStreamSpec(converseTextEvents({ pieces: ['partial', ' more'] }), { exceptionAfter: 2 }));
  const s = await client.chat.completions.create({ model: NOVA, stream: true, messages: [user('x')] });
  let text = '';
  await assert.rejects((async () => { for await (const c of s) for (const ch of c.choices) text += ch.delta?.content || ''; })(), (e) => {
    assert.match(String(e.message), /too many requests|throttl/i, `error names the exception: ${e.message}`);
    return true;
  });
  assert.equal(text, 'partial');
  assertSigned(fake.requests[0]);

  fake.enqueue(converseStreamSpec(converseTextEvents(), { exceptionAfter: 1, exception: ['modelStreamErrorException', 'The model stream failed'] }));
  const res = await fetchT(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: NOVA, stream: true, messages: [user('x')] }) });
  const raw = await res.text();
  assert.ok(!raw.includes('[DONE]'), `no [DONE] after an exception: ${raw.slice(-300)}`);
  assert.ok(/error/.test(raw), 'an error event reaches the client');
});

test('Bedrock HTTP errors reach the client in OpenAI format (type from x-amzn-errortype, message kept)', async () => {
  const client = gw.client();
  fake.enqueue(bedrockErrorSpec(400, 'ValidationException', 'The provided model identifier is invalid.'));
  const res = await fetchT(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: NOVA, messages: [user('x')] }) });
  const text = await res.text();
  assert.equal(res.status, 400);
  const env = parseErrorEnvelope(text);
  assert.match(env.error.message, /The provided model identifier is invalid/);
  assert.match(env.error.type, /ValidationException/);
  fake.enqueue(bedrockErrorSpec(429, 'ThrottlingException', 'Too many requests, please wait before trying again.'));
  await assert.rejects(client.chat.completions.create({ model: NOVA, messages: [user('x')] }), (e) => {
    assert.equal(e.status, 429);
    assert.match(String(e.message), /Too many requests/);
    return true;
  });
});

// ---- AWSAnthropic: @anthropic-ai/sdk -> InvokeModel(WithResponseStream) ----

test('AWSAnthropic non-stream: /model/<id>/invoke, anthropic_version set, model and stream removed; answer passes through', async () => {
  const client = anthropicClient(gw);
  const reply = anthropicMessage({ text: 'Hi from Bedrock Claude', model: 'claude-3-5-sonnet-20241022', id: 'msg_bdrk_1', usage: { input_tokens: 8, output_tokens: 6 } });
  fake.enqueue({ body: reply });
  const msg = await client.messages.create({ model: CLAUDE_INVOKE, max_tokens: 64, system: 'terse', messages: [user('hi')], temperature: 0.2 });
  assert.deepEqual(JSON.parse(JSON.stringify(msg)), reply);
  const rec = fake.requests[0];
  assertSigned(rec);
  assertPath(rec, CLAUDE_INVOKE, 'invoke');
  const sent = JSON.parse(client.sent[0].body);
  delete sent.model;
  assert.deepEqual(rec.json, { ...sent, anthropic_version: 'bedrock-2023-05-31' });
  assert.ok(!rec.headers['x-api-key'], 'no x-api-key to Bedrock');
});

test('AWSAnthropic stream: /invoke-with-response-stream event-stream unwrapped into Anthropic SSE the SDK reads', async () => {
  const client = anthropicClient(gw);
  const events = anthropicTextEvents({ pieces: ['Why ', 'did ', 'the chicken'], model: 'claude-3-5-sonnet-20241022', input: 14, output: 8 });
  fake.enqueue(invokeStreamSpec(events));
  const s = await client.messages.create({ model: CLAUDE_INVOKE, max_tokens: 64, stream: true, messages: [user('joke')] });
  const got = [];
  for await (const ev of s) got.push(JSON.parse(JSON.stringify(ev)));
  assert.deepEqual(got, events.filter((e) => e.type !== 'ping'));
  const rec = fake.requests[0];
  assertSigned(rec);
  assert.match(rec.path, new RegExp(`^/model/${enc(CLAUDE_INVOKE).replace(/\./g, '\\.')}/invoke(-with-response)?-stream$`));
  assert.equal(rec.path.endsWith('/invoke-with-response-stream'), true, 'the AWS API name of the streaming invoke');
  assert.ok(!('stream' in rec.json) && !('model' in rec.json));
  assert.equal(rec.json.anthropic_version, 'bedrock-2023-05-31');

  fake.enqueue(invokeStreamSpec(events));
  const res = await fetchT(`${gw.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: CLAUDE_INVOKE, max_tokens: 10, stream: true, messages: [user('x')] }) });
  const raw = await res.text();
  assert.match(res.headers.get('content-type') || '', /^text\/event-stream/);
  assert.ok(raw.startsWith('event: message_start\ndata: '), `Anthropic SSE: ${raw.slice(0, 100)}`);
  assert.ok(!raw.includes('"bytes"'), 'no base64 chunk wrapper reaches the client');
});

test('AWSAnthropic stream: an exception frame mid-stream reaches the SDK as an error', async () => {
  const client = anthropicClient(gw);
  fake.enqueue(invokeStreamSpec(anthropicTextEvents({ pieces: ['a', 'b'] }), { exceptionAfter: 4 }));
  const s = await client.messages.create({ model: CLAUDE_INVOKE, max_tokens: 64, stream: true, messages: [user('x')] });
  const got = [];
  await assert.rejects((async () => { for await (const ev of s) got.push(ev.type); })());
  assert.ok(!got.includes('message_stop'), 'no message_stop');
  assertSigned(fake.requests[0]);
});

test('/metrics: AWSBedrock provider name aws.bedrock; chat token usage; AWSAnthropic under operation messages', async () => {
  const client = gw.client();
  fake.enqueue({ body: converseResponse({ input: 100, output: 20, cacheRead: 40, cacheWrite: 10 }) });
  const r = await client.chat.completions.create({ model: 'bedrock-usage', messages: [user('u')] });
  assert.equal(r.usage.prompt_tokens, 150);
  assert.equal(r.usage.prompt_tokens_details?.cached_tokens, 40);
  await gw.settleLogs();
  const m = parseProm(await gw.metricsText());
  const sel = { gen_ai_original_model: 'bedrock-usage', gen_ai_operation_name: 'chat' };
  const samples = select(m, 'gen_ai_client_token_usage_token_sum', sel);
  assert.ok(samples.length > 0);
  assert.deepEqual([...new Set(samples.map((s) => s.labels.gen_ai_provider_name))], ['aws.bedrock']);
  assert.equal(total(m, 'gen_ai_client_token_usage_token_sum', { ...sel, gen_ai_token_type: 'input' }), 150);
  assert.equal(total(m, 'gen_ai_client_token_usage_token_sum', { ...sel, gen_ai_token_type: 'cached_input' }), 40);
  assert.equal(total(m, 'gen_ai_client_token_usage_token_sum', { ...sel, gen_ai_token_type: 'output' }), 20);
  assert.ok(total(m, 'gen_ai_client_token_usage_token_count', { gen_ai_original_model: CLAUDE_INVOKE, gen_ai_operation_name: 'messages', gen_ai_token_type: 'input' }) >= 1, 'AWSAnthropic usage recorded under messages');
});

// ---- Recorded traffic ----

const STOP = { end_turn: 'stop', stop_sequence: 'stop', max_tokens: 'length', tool_use: 'tool_calls', content_filtered: 'content_filter', guardrail_intervened: 'content_filter' };

/** What an OpenAI client should see for a Converse output message. */
function expectedFromConverse(resp) {
  const content = resp.output?.message?.content || [];
  return {
    text: content.filter((c) => typeof c.text === 'string').map((c) => c.text).join(''),
    // Server-side tools (type server_tool_use, e.g. nova_code_interpreter) ran at Bedrock: not the client's to call.
    tools: content.filter((c) => c.toolUse && c.toolUse.type !== 'server_tool_use').map((c) => [c.toolUse.toolUseId, c.toolUse.name, c.toolUse.input]),
    reasoning: content.filter((c) => c.reasoningContent?.reasoningText).map((c) => c.reasoningContent.reasoningText.text).join(''),
    finish: STOP[resp.stopReason] ?? 'stop',
    usage: resp.usage,
  };
}

/** Converse stream events of a recording: decoded event-stream frames or chunks.jsonl. */
function recordedStreamEvents(c, it) {
  const raw = caseFile(c, it.responseFile);
  if (it.responseFile.endsWith('.eventstream')) {
    return decodeFrames(raw).map((f) => {
      const p = JSON.parse(f.payload.toString('utf8'));
      delete p.p;
      return { [f.headers[':event-type']]: p };
    });
  }
  const events = raw.toString('utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  // vercel/ai's chunk fixtures start after messageStart, which real Bedrock streams always carry.
  if (!events.some((e) => e.messageStart)) events.unshift({ messageStart: { role: 'assistant' } });
  return events;
}

function expectedFromStream(events) {
  const out = { text: '', tools: new Map(), reasoning: '', finish: null };
  for (const e of events) {
    if (e.contentBlockStart?.start?.toolUse) out.tools.set(e.contentBlockStart.contentBlockIndex, { id: e.contentBlockStart.start.toolUse.toolUseId, name: e.contentBlockStart.start.toolUse.name, args: '' });
    const d = e.contentBlockDelta?.delta;
    if (d?.text) out.text += d.text;
    if (d?.toolUse) out.tools.get(e.contentBlockDelta.contentBlockIndex).args += d.toolUse.input;
    if (d?.reasoningContent?.text) out.reasoning += d.reasoningContent.text;
    if (e.messageStop) out.finish = STOP[e.messageStop.stopReason] ?? 'stop';
  }
  return out;
}

const REPLAY = { nonstream: 0, stream: 0 };

test('recorded bedrock-converse answers replayed: JSON and event-streams (recorded bytes or framed chunks) through the openai SDK', async (t) => {
  if (!requireTestdata(t)) return;
  const client = gw.client();
  const failures = [];
  let cases = 0;
  for (const c of listProviderCases('bedrock-converse')) {
    let ok = true;
    let any = false;
    for (const it of c.interactions) {
      if (!it.responseFile || it.status !== 200 || (it.path && !/\/(converse|converse-stream)$/.test(it.path))) continue;
      any = true;
      fake.reset();
      try {
        if (it.responseFile.endsWith('.json')) {
          const resp = JSON.parse(caseFile(c, it.responseFile));
          if (!resp.output) { any = false; continue; }
          fake.enqueue({ body: caseFile(c, it.responseFile) });
          const r = await client.chat.completions.create({ model: 'bedrock-replay', messages: [user('replay')] });
          const want = expectedFromConverse(resp);
          const m = r.choices[0].message;
          assert.equal(m.content ?? '', want.text, 'text');
          assert.deepEqual((m.tool_calls || []).map((x) => [x.id, x.function.name, JSON.parse(x.function.arguments || '{}')]), want.tools, 'tool calls');
          if (want.reasoning) assert.equal(m.reasoning_content, want.reasoning, 'reasoning_content');
          assert.equal(r.choices[0].finish_reason, want.finish, `finish for ${resp.stopReason}`);
          const u = want.usage;
          assert.equal(r.usage.prompt_tokens, u.inputTokens + (u.cacheReadInputTokens || 0) + (u.cacheWriteInputTokens || 0), 'prompt tokens');
          assert.equal(r.usage.completion_tokens, u.outputTokens);
          REPLAY.nonstream++;
        } else {
          const events = recordedStreamEvents(c, it);
          if (it.responseFile.endsWith('.eventstream')) fake.enqueue(eventstreamBytesSpec(caseFile(c, it.responseFile)));
          else fake.enqueue({ contentType: EVENTSTREAM, chunks: events.map(converseEventFrame) });
          const stream = client.chat.completions.stream({ model: 'bedrock-replay', messages: [user('replay')] });
          const final = await stream.finalChatCompletion();
          const want = expectedFromStream(events);
          const m = final.choices[0].message;
          assert.equal(m.content ?? '', want.text, 'streamed text');
          assert.deepEqual((m.tool_calls || []).map((x) => [x.id, x.function.name, JSON.parse(x.function.arguments || '{}')]),
            [...want.tools.values()].map((x) => [x.id, x.name, JSON.parse(x.args || '{}')]), 'streamed tool calls');
          if (want.finish) assert.equal(final.choices[0].finish_reason, want.finish);
          REPLAY.stream++;
        }
        assertSigned(fake.requests[0]);
      } catch (e) {
        ok = false;
        failures.push(`${c.category}/${c.name}#${it.index}: ${String(e.message).split('\n').slice(0, 4).join(' | ')}`);
        break;
      }
    }
    if (ok && any) cases++;
  }
  t.diagnostic(`bedrock-converse: ${cases} cases replayed (${REPLAY.nonstream} JSON answers, ${REPLAY.stream} streams)`);
  assert.ok(cases >= 40, `replayed ${cases}`);
  assert.deepEqual(failures, []);
});

test('recorded bedrock-invoke Anthropic-native cases replayed through @anthropic-ai/sdk on AWSAnthropic', async (t) => {
  if (!requireTestdata(t)) return;
  const client = anthropicClient(gw);
  let n = 0;
  const failures = [];
  for (const c of listProviderCases('bedrock-invoke')) {
    if (!c.tags.includes('anthropic-native') && !/anthropic/.test(c.name)) continue;
    for (const it of c.interactions) {
      if (!it.path || !/\/invoke$/.test(it.path) || it.status !== 200 || !it.requestFile) continue;
      const reqBody = JSON.parse(caseFile(c, it.requestFile));
      if (!Array.isArray(reqBody.messages)) continue;
      fake.reset();
      fake.enqueue({ body: caseFile(c, it.responseFile) });
      try {
        const params = { ...reqBody, model: 'claude-invoke-replay' };
        delete params.anthropic_version;
        const msg = await client.messages.create(params);
        assert.deepEqual(JSON.parse(JSON.stringify(msg)), JSON.parse(caseFile(c, it.responseFile)));
        const rec = fake.requests[0];
        assertSigned(rec);
        assertPath(rec, CLAUDE_INVOKE, 'invoke');
        assert.equal(rec.json.anthropic_version, 'bedrock-2023-05-31');
        assert.deepEqual(rec.json.messages, reqBody.messages);
        n++;
      } catch (e) {
        failures.push(`${c.category}/${c.name}#${it.index}: ${String(e.message).split('\n').slice(0, 3).join(' | ')}`);
      }
    }
  }
  t.diagnostic(`bedrock-invoke: ${n} Anthropic-native interactions replayed`);
  assert.ok(n >= 1);
  assert.deepEqual(failures, []);
});

function translationCases(backend) {
  const dir = path.join(TESTDATA_DIR, 'providers', 'gateway-translation', backend);
  return fs.readdirSync(dir).sort().map((name) => {
    const d = path.join(dir, name);
    const meta = JSON.parse(fs.readFileSync(path.join(d, 'meta.json'), 'utf8'));
    const f = (k) => (meta.files[k] && fs.existsSync(path.join(d, meta.files[k])) ? fs.readFileSync(path.join(d, meta.files[k])) : null);
    return { name, meta, req: f('requestBody'), exp2: f('expRequestBody'), upstream: f('responseBody'), exp4: f('expResponseBody'), respFile: meta.files.responseBody };
  });
}

test('gateway-translation aws-bedrock cases: Converse request and OpenAI answer as expected', async (t) => {
  if (!requireTestdata(t)) return;
  let n = 0;
  const failures = [];
  for (const tc of translationCases('aws-bedrock')) {
    fake.reset();
    const status = Number(tc.meta.upstream_response_status || 200);
    if (tc.respFile.endsWith('.jsonl')) {
      const types = ['messageStart', 'contentBlockDelta', 'contentBlockStop', 'messageStop', 'metadata', 'contentBlockStart'];
      const frames = tc.upstream.toString('utf8').split('\n').filter((l) => l.trim()).map((l) => {
        const p = JSON.parse(l);
        const type = p.role ? 'messageStart' : p.stopReason ? 'messageStop' : p.usage ? 'metadata' : p.start ? 'contentBlockStart' : p.delta ? 'contentBlockDelta' : types[2];
        return converseEventFrame({ [type]: p });
      });
      fake.enqueue({ contentType: EVENTSTREAM, chunks: frames });
    } else {
      const headers = {};
      if (tc.meta.upstream_response_headers_b64) {
        for (const kv of String(tc.meta.upstream_response_headers_b64).split(',')) {
          const i = kv.indexOf(':');
          if (i > 0) headers[kv.slice(0, i)] = kv.slice(i + 1);
        }
      }
      fake.enqueue({ status, headers, body: tc.upstream });
    }
    try {
      const body = JSON.parse(tc.req);
      const model = body.model;
      const res = await fetchT(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` }, body: JSON.stringify({ ...body, model: NOVA }) });
      const text = await res.text();
      assert.equal(res.status, tc.meta.client_expected_status, text.slice(0, 300));
      const rec = fake.requests[0];
      assertSigned(rec);
      if (tc.exp2) {
        const want = JSON.parse(tc.exp2);
        for (const k of ['messages', 'system', 'toolConfig', 'additionalModelRequestFields']) {
          if (want[k] !== undefined && !(Array.isArray(want[k]) && want[k].length === 0)) assert.deepEqual(rec.json[k], want[k], k);
        }
        for (const [k, v] of Object.entries(want.inferenceConfig || {})) assert.deepEqual(rec.json.inferenceConfig?.[k], v, `inferenceConfig.${k}`);
      }
      if (res.status !== 200) {
        const e = JSON.parse(text);
        assert.ok(e.error?.message, text);
      } else if (!tc.respFile.endsWith('.jsonl')) {
        const got = JSON.parse(text);
        const want = JSON.parse(tc.exp4);
        // ai-gateway keeps only the first of several text blocks; all of them joined is accepted too.
        const allText = (JSON.parse(tc.upstream).output?.message?.content || []).filter((x) => typeof x.text === 'string').map((x) => x.text).join('');
        assert.ok([want.choices[0].message.content, allText].includes(got.choices[0].message.content), `content ${JSON.stringify(got.choices[0].message.content)}`);
        assert.equal(got.choices[0].finish_reason, want.choices[0].finish_reason);
        assert.equal(got.model, NOVA, `response model is the request model (case used ${model})`);
      } else {
        const got = sseDataObjects(Buffer.from(text));
        const want = sseDataObjects(tc.exp4);
        const join = (objs, k) => objs.flatMap((o) => o.choices || []).map((c) => (typeof c.delta?.[k] === 'string' ? c.delta[k] : '')).join('');
        assert.equal(join(got, 'content'), join(want, 'content'), 'streamed text');
        assert.equal(join(got, 'reasoning_content'), join(want, 'reasoning_content'), 'streamed reasoning');
        const args = (objs) => {
          const by = {};
          for (const x of objs.flatMap((o) => o.choices || []).flatMap((c) => c.delta?.tool_calls || [])) {
            by[x.index] ||= { id: null, name: '', args: '' };
            if (x.id) by[x.index].id = x.id;
            if (x.function?.name) by[x.index].name += x.function.name;
            by[x.index].args += x.function?.arguments || '';
          }
          return Object.values(by).map((v) => [v.id, v.name, v.args ? JSON.parse(v.args) : {}]);
        };
        assert.deepEqual(args(got), args(want), 'tool calls');
        const fin = (objs) => objs.flatMap((o) => o.choices || []).map((c) => c.finish_reason).filter(Boolean);
        assert.deepEqual(fin(got), fin(want), 'finish reasons');
      }
      n++;
    } catch (e) {
      failures.push(`${tc.name}: ${String(e.message).split('\n').slice(0, 4).join(' | ')}`);
    }
  }
  t.diagnostic(`gateway-translation/aws-bedrock: ${n} cases replayed`);
  assert.deepEqual(failures, []);
});

test('gateway-translation aws-anthropic cases: invoke body and unwrapped answer as expected', async (t) => {
  if (!requireTestdata(t)) return;
  let n = 0;
  const failures = [];
  for (const tc of translationCases('aws-anthropic')) {
    fake.reset();
    const status = Number(tc.meta.upstream_response_status || 200);
    if (tc.respFile.endsWith('.jsonl')) {
      const frames = tc.upstream.toString('utf8').split('\n').filter((l) => l.trim()).map((l) => {
        const p = JSON.parse(l);
        return invokeChunkFrame(Buffer.from(p.bytes, 'base64').toString('utf8'));
      });
      fake.enqueue({ contentType: EVENTSTREAM, chunks: frames });
    } else {
      fake.enqueue({ status, body: tc.upstream });
    }
    try {
      const body = JSON.parse(tc.req);
      const res = await fetchT(`${gw.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, model: CLAUDE_INVOKE }) });
      const text = await res.text();
      assert.equal(res.status, tc.meta.client_expected_status, text.slice(0, 300));
      const rec = fake.requests[0];
      assertSigned(rec);
      if (tc.exp2) assert.deepEqual(rec.json, JSON.parse(tc.exp2), 'invoke body');
      if (tc.exp4 && tc.respFile.endsWith('.jsonl')) {
        const evs = (buf) => Buffer.from(buf).toString('utf8').split(/\n\n/).filter((b) => b.trim()).map((b) => {
          const data = b.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('');
          const ev = b.split('\n').find((l) => l.startsWith('event:'))?.slice(6).trim();
          return { ev, data: JSON.parse(data) };
        });
        assert.deepEqual(evs(text), evs(tc.exp4));
      } else if (tc.exp4) {
        const got = JSON.parse(text);
        const want = JSON.parse(tc.exp4);
        if (res.status === 200) assert.deepEqual(got, want);
        else assert.equal(got.type, 'error', `Anthropic-format error: ${text}`);
      }
      n++;
    } catch (e) {
      failures.push(`${tc.name}: ${String(e.message).split('\n').slice(0, 4).join(' | ')}`);
    }
  }
  t.diagnostic(`gateway-translation/aws-anthropic: ${n} cases replayed`);
  assert.deepEqual(failures, []);
});

test('every request the fake Bedrock received in this file carried a valid SigV4 signature', () => {
  const done = allRequests.filter((r) => r.bodyComplete);
  assert.ok(done.length >= 20, `${done.length} requests`);
  const bad = done.filter((r) => !(r.sigv4 && r.sigv4.ok)).map((r) => `${r.path}: ${r.sigv4 ? r.sigv4.reasons.join('; ') : r.inspectError}`);
  assert.deepEqual([...new Set(bad)].slice(0, 10), [], `${bad.length} of ${done.length} requests not correctly signed`);
  assert.ok(done.some((r) => r.path.includes('%3A')), 'model ids with ":" were among the signed paths');
});

test('no AWS secret in logs, /metrics or /config_dump', async () => {
  await gw.settleLogs();
  const text = JSON.stringify(gw.logs) + gw.stderr + gw.nonJsonStdout.join('\n') + await gw.metricsText();
  const dump = await (await fetchT(`${gw.adminURL}/config_dump`)).text();
  for (const s of [KEY.secret, CLIENT_KEY]) {
    assert.ok(!text.includes(s), 'secret in logs or metrics');
    assert.ok(!dump.includes(s), 'secret in /config_dump');
  }
});

shutdownTest(() => [gw]);
