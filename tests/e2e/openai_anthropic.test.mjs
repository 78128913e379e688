// The official openai SDK against /v1/chat/completions on an Anthropic backend (fake Anthropic
// upstream): the Messages request the gateway builds (system, max_tokens, tools, tool_choice, tool
// results, thinking), text and tool-call answers (streamed arguments), reasoning to OpenAI clients
// (message.reasoning_content string + message.thinking_blocks, and the same in stream deltas),
// finish reasons, usage with cached tokens, errors in OpenAI format and a mid-stream overloaded
// error that raises in the SDK; plus the hand-written ai-gateway translation cases of Claude.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startFakeAnthropic, anthropicSSE, anthropicMessage, anthropicTextEvents, anthropicError } from './lib/fake_anthropic.mjs';
import { splitSSE } from './lib/fake_openai.mjs';
import { startGateway, fetchT, CLIENT_KEY, parseErrorEnvelope } from './lib/gateway.mjs';
import { assertNoClientKey, shutdownTest } from './lib/common.mjs';
import { parseProm, total } from './lib/prom.mjs';
import { providerYaml, ANTHROPIC_UPSTREAM_KEY } from './lib/providers.mjs';
import { requireTestdata, TESTDATA_DIR, sseDataObjects } from './lib/testdata.mjs';

let fake;
let gw;

before(async () => {
  fake = await startFakeAnthropic();
  gw = await startGateway({
    config: (g) => providerYaml({
      port: g.port,
      routes: [
        { model: 'claude-oa', backends: [{ name: 'anth' }] },
        { model: 'claude-oa-usage', backends: [{ name: 'anth' }] },
        { model: 'claude-3-sonnet', backends: [{ name: 'anth' }] },
      ],
      backends: [{ name: 'anth', port: fake.port, schema: 'Anthropic', auth: { type: 'AnthropicAPIKey', key: ANTHROPIC_UPSTREAM_KEY } }],
    }),
  });
});
after(async () => {
  await gw?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const upstreamJSON = (i = 0) => JSON.parse(fake.requests[i].body.toString('utf8'));

function assertMessagesUpstream(rec) {
  assert.equal(rec.path, '/v1/messages', 'chat completions become /v1/messages');
  assert.equal(rec.headers['x-api-key'], ANTHROPIC_UPSTREAM_KEY);
  assert.ok(!rec.headers.authorization, 'no Authorization upstream');
  assert.ok(rec.headers['anthropic-version'], 'anthropic-version upstream');
  assertNoClientKey(rec);
}

test('text: system + user become a Messages request; answer, finish_reason, usage map back', async () => {
  const client = gw.client();
  fake.enqueue({ body: anthropicMessage({ text: 'Bonjour!', model: 'claude-oa-20250101', usage: { input_tokens: 21, output_tokens: 4 } }) });
  const r = await client.chat.completions.create({
    model: 'claude-oa', max_tokens: 77, temperature: 0.3, top_p: 0.9, stop: ['END'],
    messages: [{ role: 'system', content: 'You speak French.' }, { role: 'user', content: 'Hello' }],
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, 'Bonjour!');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.prompt_tokens, 21);
  assert.equal(r.usage.completion_tokens, 4);
  assert.equal(r.usage.total_tokens, 25);
  assertMessagesUpstream(fake.requests[0]);
  const u = upstreamJSON();
  assert.equal(u.model, 'claude-oa');
  assert.equal(u.max_tokens, 77);
  assert.equal(u.temperature, 0.3);
  assert.equal(u.top_p, 0.9);
  assert.deepEqual(u.stop_sequences, ['END']);
  const sys = typeof u.system === 'string' ? u.system : u.system.map((b) => b.text).join('');
  assert.equal(sys, 'You speak French.');
  assert.equal(u.messages.length, 1);
  assert.equal(u.messages[0].role, 'user');
  const c = u.messages[0].content;
  assert.equal(typeof c === 'string' ? c : c.map((b) => b.text).join(''), 'Hello');
  assert.ok(!u.stream, 'non-stream request');
});

test('finish reasons: max_tokens -> length, tool_use -> tool_calls, stop_sequence -> stop, refusal -> content_filter', async () => {
  const client = gw.client();
  const want = { max_tokens: 'length', stop_sequence: 'stop', end_turn: 'stop', refusal: 'content_filter' };
  for (const [stop, fin] of Object.entries(want)) {
    fake.enqueue({ body: anthropicMessage({ stopReason: stop }) });
    const r = await client.chat.completions.create({ model: 'claude-oa', max_tokens: 5, messages: [{ role: 'user', content: stop }] });
    assert.equal(r.choices[0].finish_reason, fin, `stop_reason ${stop}`);
  }
});

const tools = [{
  type: 'function',
  function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
}];

test('tools: definitions, tool_choice, assistant tool_calls and tool results translate; tool_use answer -> tool_calls', async () => {
  const client = gw.client();
  fake.enqueue({ body: anthropicMessage({ stopReason: 'tool_use', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_oa_1', name: 'get_weather', input: { city: 'Paris' } }] }) });
  const r = await client.chat.completions.create({ model: 'claude-oa', max_tokens: 50, tools, tool_choice: 'required', messages: [{ role: 'user', content: 'Weather in Paris?' }] });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const tc = r.choices[0].message.tool_calls;
  assert.equal(tc.length, 1);
  assert.equal(tc[0].id, 'toolu_oa_1');
  assert.equal(tc[0].type, 'function');
  assert.equal(tc[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(tc[0].function.arguments), { city: 'Paris' });
  const u = upstreamJSON();
  assert.deepEqual(u.tools, [{ name: 'get_weather', description: 'Weather of a city', input_schema: tools[0].function.parameters }]);
  assert.deepEqual(u.tool_choice, { type: 'any' }, 'required -> any');

  const choices = [['auto', { type: 'auto' }], [{ type: 'function', function: { name: 'get_weather' } }, { type: 'tool', name: 'get_weather' }]];
  for (const [choice, expected] of choices) {
    fake.enqueue({ body: anthropicMessage() });
    await client.chat.completions.create({ model: 'claude-oa', max_tokens: 5, tools, tool_choice: choice, messages: [{ role: 'user', content: 'x' }] });
    assert.deepEqual({ ...upstreamJSON(fake.requests.length - 1).tool_choice, disable_parallel_tool_use: undefined }, { ...expected, disable_parallel_tool_use: undefined });
  }

  fake.enqueue({ body: anthropicMessage({ text: 'It is sunny.' }) });
  await client.chat.completions.create({
    model: 'claude-oa', max_tokens: 50, tools,
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_oa_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'toolu_oa_1', content: '21 C, sunny' },
    ],
  });
  const m = upstreamJSON(fake.requests.length - 1).messages;
  assert.equal(m.length, 3);
  assert.equal(m[1].role, 'assistant');
  const tu = m[1].content.find((b) => b.type === 'tool_use');
  assert.deepEqual({ id: tu.id, name: tu.name, input: tu.input }, { id: 'toolu_oa_1', name: 'get_weather', input: { city: 'Paris' } });
  assert.equal(m[2].role, 'user');
  const tr = m[2].content.find((b) => b.type === 'tool_result');
  assert.equal(tr.tool_use_id, 'toolu_oa_1');
  const trText = typeof tr.content === 'string' ? tr.content : tr.content.map((b) => b.text).join('');
  assert.equal(trText, '21 C, sunny');
});

test('streaming tool call: arguments streamed as input_json_delta arrive as tool_call deltas the SDK assembles', async () => {
  const client = gw.client();
  const events = [
    { type: 'message_start', message: { id: 'msg_st', type: 'message', role: 'assistant', model: 'claude-oa', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 40, output_tokens: 1 } } },
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Let me look.' } },
    { type: 'content_block_stop', index: 0 },
    { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_st_1', name: 'get_weather', input: {} } },
    { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '' } },
    { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"ci' } },
    { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: 'ty": "Par' } },
    { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: 'is"}' } },
    { type: 'content_block_stop', index: 1 },
    { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_st_2', name: 'get_weather', input: {} } },
    { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"city": "Oslo"}' } },
    { type: 'content_block_stop', index: 2 },
    { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 33 } },
    { type: 'message_stop' },
  ];
  fake.enqueue({ chunks: splitSSE(anthropicSSE(events)), delayMs: 2 });
  const stream = client.chat.completions.stream({ model: 'claude-oa', max_tokens: 100, tools, messages: [{ role: 'user', content: 'Weather in Paris and Oslo?' }], stream_options: { include_usage: true } });
  const chunks = [];
  stream.on('chunk', (c) => chunks.push(c));
  const final = await stream.finalChatCompletion();
  const msg = final.choices[0].message;
  assert.equal(msg.content, 'Let me look.');
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.equal(msg.tool_calls.length, 2);
  assert.deepEqual(msg.tool_calls.map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)]),
    [['toolu_st_1', 'get_weather', { city: 'Paris' }], ['toolu_st_2', 'get_weather', { city: 'Oslo' }]]);
  const argPieces = chunks.flatMap((c) => c.choices.flatMap((ch) => (ch.delta.tool_calls || []).filter((t) => t.index === 0 && t.function?.arguments).map((t) => t.function.arguments)));
  assert.ok(argPieces.length >= 2, `arguments arrive in pieces, not one block: ${JSON.stringify(argPieces)}`);
  assert.equal(upstreamJSON().stream, true);
  const usage = chunks.map((c) => c.usage).filter(Boolean).at(-1);
  assert.equal(usage.prompt_tokens, 40);
  assert.equal(usage.completion_tokens, 33);
});

test('reasoning (non-stream): message.reasoning_content is the thinking text, message.thinking_blocks keep signatures', async () => {
  const client = gw.client();
  const content = [
    { type: 'thinking', thinking: 'Two plus two. ', signature: 'sig-A' },
    { type: 'redacted_thinking', data: 'REDACTED-B' },
    { type: 'thinking', thinking: 'It is four.', signature: 'sig-C' },
    { type: 'text', text: '4' },
  ];
  fake.enqueue({ body: anthropicMessage({ content }) });
  const r = await client.chat.completions.create({ model: 'claude-oa', max_tokens: 2048, messages: [{ role: 'user', content: '2+2?' }], thinking: { type: 'enabled', budget_tokens: 1024 } });
  const m = r.choices[0].message;
  assert.equal(m.content, '4');
  assert.equal(typeof m.reasoning_content, 'string', `reasoning_content is a string: ${JSON.stringify(m.reasoning_content)}`);
  assert.equal(m.reasoning_content, 'Two plus two. It is four.');
  assert.ok(Array.isArray(m.thinking_blocks), 'thinking_blocks present');
  assert.deepEqual(m.thinking_blocks.filter((b) => b.type === 'thinking').map((b) => [b.thinking, b.signature]), [['Two plus two. ', 'sig-A'], ['It is four.', 'sig-C']]);
  assert.ok(m.thinking_blocks.some((b) => b.type === 'redacted_thinking' && b.data === 'REDACTED-B'), 'redacted thinking kept');
  assert.deepEqual(upstreamJSON().thinking, { type: 'enabled', budget_tokens: 1024 }, 'thinking vendor field forwarded');
});

test('reasoning (stream): delta.reasoning_content pieces, then the signature in delta.thinking_blocks; text after', async () => {
  const client = gw.client();
  const events = [
    { type: 'message_start', message: { id: 'msg_rs', type: 'message', role: 'assistant', model: 'claude-oa', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1 } } },
    { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Hmm, ' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'four.' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig-stream-1' } },
    { type: 'content_block_stop', index: 0 },
    { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
    { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: '4' } },
    { type: 'content_block_stop', index: 1 },
    { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 20 } },
    { type: 'message_stop' },
  ];
  fake.enqueue({ chunks: splitSSE(anthropicSSE(events)) });
  const s = await client.chat.completions.create({ model: 'claude-oa', max_tokens: 2048, stream: true, messages: [{ role: 'user', content: '2+2?' }], thinking: { type: 'enabled', budget_tokens: 1024 } });
  let reasoning = '';
  let text = '';
  const blocks = [];
  let finish = null;
  for await (const c of s) {
    for (const ch of c.choices) {
      const d = ch.delta || {};
      if (d.reasoning_content !== undefined) {
        assert.equal(typeof d.reasoning_content, 'string', `delta.reasoning_content is a string: ${JSON.stringify(d)}`);
        reasoning += d.reasoning_content;
      }
      if (d.thinking_blocks) blocks.push(...d.thinking_blocks);
      if (d.content) text += d.content;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  assert.equal(reasoning, 'Hmm, four.');
  assert.equal(text, '4');
  assert.equal(finish, 'stop');
  assert.ok(blocks.some((b) => b.signature === 'sig-stream-1'), `signature delivered in delta.thinking_blocks: ${JSON.stringify(blocks)}`);
});

test('usage with cached tokens: prompt_tokens include cache read and creation, cached_tokens = cache read; stream usage chunk; /metrics', async () => {
  const client = gw.client();
  fake.enqueue({ body: anthropicMessage({ usage: { input_tokens: 50, cache_read_input_tokens: 1000, cache_creation_input_tokens: 20, output_tokens: 9 } }) });
  const r = await client.chat.completions.create({ model: 'claude-oa-usage', max_tokens: 5, messages: [{ role: 'user', content: 'cached' }] });
  assert.equal(r.usage.prompt_tokens, 1070);
  assert.equal(r.usage.prompt_tokens_details.cached_tokens, 1000);
  assert.equal(r.usage.completion_tokens, 9);
  assert.equal(r.usage.total_tokens, 1079);

  fake.enqueue({ chunks: splitSSE(anthropicSSE(anthropicTextEvents({ input: 15, cacheRead: 10, output: 12 }))) });
  const s = await client.chat.completions.create({ model: 'claude-oa-usage', max_tokens: 5, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'cached stream' }] });
  let usage = null;
  for await (const c of s) if (c.usage) usage = c.usage;
  assert.ok(usage, 'a usage chunk');
  assert.equal(usage.prompt_tokens, 25);
  assert.equal(usage.completion_tokens, 12);
  assert.equal(usage.prompt_tokens_details?.cached_tokens, 10);

  await gw.settleLogs();
  const m = parseProm(await gw.metricsText());
  const sel = { gen_ai_operation_name: 'chat', gen_ai_original_model: 'claude-oa-usage' };
  assert.equal(total(m, 'gen_ai_client_token_usage_token_sum', { ...sel, gen_ai_token_type: 'input' }), 1095);
  assert.equal(total(m, 'gen_ai_client_token_usage_token_sum', { ...sel, gen_ai_token_type: 'cached_input' }), 1010);
  assert.equal(total(m, 'gen_ai_client_token_usage_token_sum', { ...sel, gen_ai_token_type: 'output' }), 21);
});

test('mid-stream overloaded error: the openai SDK raises, after the text that came before', async () => {
  const client = gw.client();
  const head = anthropicTextEvents({ pieces: ['partial ', 'answer'] }).slice(0, 5);
  const sse = anthropicSSE(head) + `event: error\ndata: ${JSON.stringify(anthropicError('overloaded_error', 'Overloaded'))}\n\n`;
  fake.enqueue({ chunks: splitSSE(sse), delayMs: 3 });
  const s = await client.chat.completions.create({ model: 'claude-oa', max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'x' }] });
  let text = '';
  let finish = null;
  await assert.rejects((async () => {
    for await (const c of s) {
      for (const ch of c.choices) {
        text += ch.delta?.content || '';
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
  })(), (e) => {
    assert.match(String(e.message), /overloaded/i, `error mentions overloaded: ${e.message}`);
    return true;
  });
  assert.equal(text, 'partial answer');
  assert.equal(finish, null, 'no finish_reason before the error');

  fake.enqueue({ chunks: splitSSE(sse) });
  const res = await fetchT(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` }, body: JSON.stringify({ model: 'claude-oa', max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'x' }] }) });
  const raw = await res.text();
  assert.ok(!raw.includes('[DONE]'), 'no [DONE] after an error');
});

test('errors: upstream 529 overloaded and a non-JSON 502 reach the client in OpenAI format', async () => {
  const client = gw.client();
  fake.enqueue({ status: 529, body: anthropicError('overloaded_error', 'Overloaded') });
  await assert.rejects(client.chat.completions.create({ model: 'claude-oa', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }), (e) => {
    assert.equal(e.status, 529);
    assert.match(String(e.message), /Overloaded/);
    return true;
  });
  fake.enqueue({ status: 529, body: anthropicError('overloaded_error', 'Overloaded') });
  let res = await fetchT(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude-oa', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }) });
  let text = await res.text();
  assert.equal(res.status, 529);
  const env = parseErrorEnvelope(text);
  assert.match(env.error.message, /Overloaded/);
  fake.enqueue({ status: 502, contentType: 'text/html', body: '<html>bad gateway</html>' });
  res = await fetchT(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude-oa', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }) });
  text = await res.text();
  assert.equal(res.status, 502);
  assert.match(res.headers.get('content-type') || '', /application\/json/);
  parseErrorEnvelope(text);
});

// ---- ai-gateway's hand-written Claude translation cases (gcp-anthropicai), through an Anthropic backend ----

function textOf(content) {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.filter((b) => b.type === 'text').map((b) => b.text).join('');
}

function normalizeMessages(msgs) {
  return msgs.map((m) => ({ role: m.role, content: Array.isArray(m.content) ? m.content.map((b) => (b.type === 'text' ? { type: 'text', text: b.text } : b)) : [{ type: 'text', text: m.content }] }));
}

test('gateway-translation gcp-anthropicai chat cases: Messages request and OpenAI answer as expected', async (t) => {
  if (!requireTestdata(t)) return;
  const dir = path.join(TESTDATA_DIR, 'providers', 'gateway-translation', 'gcp-anthropicai');
  let n = 0;
  const failures = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const d = path.join(dir, name);
    const meta = JSON.parse(fs.readFileSync(path.join(d, 'meta.json'), 'utf8'));
    if (meta.client_path !== '/v1/chat/completions') continue;
    const f = (k) => (meta.files[k] ? fs.readFileSync(path.join(d, meta.files[k])) : null);
    const req = f('requestBody');
    const exp2 = f('expRequestBody');
    const upstream = f('responseBody');
    const exp4 = f('expResponseBody');
    const stream = /sse/.test(meta.files.responseBody);
    fake.reset();
    const status = Number(meta.upstream_response_status || 200);
    if (stream) fake.enqueue({ status, contentType: 'text/event-stream', chunks: splitSSE(upstream.toString('utf8').endsWith('\n\n') ? upstream : Buffer.concat([upstream, Buffer.from('\n\n')])) });
    else fake.enqueue({ status, body: upstream });
    try {
      const res = await fetchT(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` }, body: req });
      const text = await res.text();
      assert.equal(res.status, meta.client_expected_status, text);
      if (exp2) {
        const got = upstreamJSON();
        const want = JSON.parse(exp2);
        assert.deepEqual(normalizeMessages(got.messages), normalizeMessages(want.messages), 'messages');
        assert.equal(got.max_tokens, want.max_tokens);
        if (want.system) assert.equal(textOf(got.system), textOf(want.system), 'system');
        if (want.stream) assert.equal(got.stream, true);
        if (want.tools) assert.deepEqual(got.tools.map((x) => x.name), want.tools.map((x) => x.name));
      }
      if (res.status !== 200) {
        const e = JSON.parse(text);
        assert.ok(e.error && typeof e.error.message === 'string', text);
        assert.equal(e.error.message.includes(JSON.parse(exp4).error.message), true, `error message kept: ${text}`);
      } else if (!stream) {
        const got = JSON.parse(text);
        const want = JSON.parse(exp4);
        assert.equal(got.choices[0].message.content, want.choices[0].message.content);
        assert.equal(got.choices[0].finish_reason, want.choices[0].finish_reason);
        for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens']) assert.equal(got.usage[k], want.usage[k], k);
      } else {
        const got = sseDataObjects(Buffer.from(text));
        const want = sseDataObjects(exp4);
        const join = (objs) => objs.flatMap((o) => o.choices || []).map((c) => c.delta?.content || '').join('');
        assert.equal(join(got), join(want), 'streamed text');
        const fin = (objs) => objs.flatMap((o) => o.choices || []).map((c) => c.finish_reason).filter(Boolean);
        assert.deepEqual(fin(got), fin(want), 'finish reasons');
        const args = (objs) => objs.flatMap((o) => o.choices || []).flatMap((c) => c.delta?.tool_calls || []).map((tc) => tc.function?.arguments || '').join('');
        if (args(want)) assert.deepEqual(JSON.parse(args(got)), JSON.parse(args(want)), 'tool arguments');
        const u = (objs) => objs.map((o) => o.usage).filter(Boolean).at(-1);
        if (u(want) && u(got)) {
          for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens']) assert.equal(u(got)[k], u(want)[k], `usage ${k}`);
        }
      }
      n++;
    } catch (e) {
      failures.push(`${name}: ${String(e.message).split('\n').slice(0, 4).join(' | ')}`);
    }
  }
  t.diagnostic(`gateway-translation/gcp-anthropicai: ${n} chat cases replayed through an Anthropic backend`);
  assert.deepEqual(failures, []);
});

shutdownTest(() => [gw]);
