// /metrics and the access log against known usage: fixtures and recorded cases are replayed, then
// the token-usage histogram sums and counts must equal the usage numbers in the replayed bodies,
// per operation and model, and each access-log line must carry the request's model and tokens and
// never a key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeOpenAI, splitSSE, splitN } from './lib/fake_openai.mjs';
import { startGateway, openaiEnv, UPSTREAM_KEY, CLIENT_KEY } from './lib/gateway.mjs';
import { post, shutdownTest } from './lib/common.mjs';
import { parseProm, select, total } from './lib/prom.mjs';
import {
  fixture, haveTestdata, chatReplayCases, listOpenAICases, caseFile, usageOf, responseModelOf,
} from './lib/testdata.mjs';

let fake;
let gw;
const expected = new Map(); // `${op}|${original}|${responseModel}` -> { input, output, cached, samples }
const requestsByOp = new Map();
const streamsByOp = new Map();
const exchanges = []; // { model, usage, logIndex }
let replayedRecorded = 0;

before(async () => {
  fake = await startFakeOpenAI();
  gw = await startGateway({ env: openaiEnv(fake) });
});
after(async () => {
  await gw?.close();
  await fake?.close();
});

const inc = (m, k, n = 1) => m.set(k, (m.get(k) || 0) + n);

/** Sends one exchange through the gateway and records what /metrics and the log must show. */
async function exchange({ op, path, requestBytes, responseBytes, stream, contentType, splitBytes = 0 }) {
  const req = JSON.parse(Buffer.from(requestBytes).toString('utf8'));
  if (splitBytes) fake.enqueue({ chunks: splitN(responseBytes, Math.ceil(responseBytes.length / splitBytes)), delayMs: 1, contentType: contentType ?? (stream ? 'text/event-stream' : 'application/json'), chunked: true });
  else fake.enqueue(stream ? { chunks: splitSSE(responseBytes), contentType } : { body: responseBytes, contentType });
  const res = await post(gw, path, requestBytes);
  const got = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200);
  assert.ok(got.equals(Buffer.from(responseBytes)), 'response bytes unchanged');
  const usage = usageOf(responseBytes, stream);
  const responseModel = responseModelOf(responseBytes, stream);
  inc(requestsByOp, op);
  if (stream) inc(streamsByOp, op);
  if (usage) {
    const k = `${op}|${req.model}|${responseModel ?? req.model}`;
    const e = expected.get(k) || { input: 0, output: 0, cached: 0, samples: 0 };
    e.input += usage.input;
    e.output += usage.output;
    e.cached += usage.cached;
    e.samples += 1;
    expected.set(k, e);
  }
  exchanges.push({ model: req.model, usage, op });
  await gw.waitForLogs(exchanges.length);
}

test('replay fixtures: chat, chat stream, embeddings, completions (both), image generation', async () => {
  const chatReq = (model, extra = {}) => Buffer.from(JSON.stringify({ model, messages: [{ role: 'user', content: 'm' }], ...extra }));
  await exchange({ op: 'chat', path: '/v1/chat/completions', requestBytes: chatReq('gpt-m-chat'), responseBytes: fixture('chat.json') });
  await exchange({ op: 'chat', path: '/v1/chat/completions', requestBytes: chatReq('gpt-m-chat'), responseBytes: fixture('chat.json') });
  await exchange({ op: 'chat', path: '/v1/chat/completions', requestBytes: chatReq('gpt-m-stream', { stream: true, stream_options: { include_usage: true } }), responseBytes: fixture('chat_stream.sse'), stream: true });
  await exchange({ op: 'chat', path: '/v1/chat/completions', requestBytes: chatReq('gpt-m-tools', { stream: true, stream_options: { include_usage: true } }), responseBytes: fixture('chat_tools_stream.sse'), stream: true });
  await exchange({ op: 'chat', path: '/v1/chat/completions', requestBytes: chatReq('gpt-m-tools'), responseBytes: fixture('chat_tools.json') });
  await exchange({ op: 'embeddings', path: '/v1/embeddings', requestBytes: Buffer.from('{"model":"emb-m","input":["a","b"],"encoding_format":"float"}'), responseBytes: fixture('embeddings_float.json') });
  await exchange({ op: 'embeddings', path: '/v1/embeddings', requestBytes: Buffer.from('{"model":"emb-m","input":["a","b"],"encoding_format":"base64"}'), responseBytes: fixture('embeddings_base64.json') });
  await exchange({ op: 'completion', path: '/v1/completions', requestBytes: Buffer.from('{"model":"instruct-m","prompt":"The sky is"}'), responseBytes: fixture('completion.json') });
  await exchange({ op: 'completion', path: '/v1/completions', requestBytes: Buffer.from('{"model":"instruct-m","prompt":"count","stream":true,"stream_options":{"include_usage":true}}'), responseBytes: fixture('completion_stream.sse'), stream: true });
  // Usage must be found however the upstream bytes are cut: events split every few bytes.
  await exchange({ op: 'chat', path: '/v1/chat/completions', requestBytes: chatReq('gpt-m-split', { stream: true, stream_options: { include_usage: true } }), responseBytes: fixture('chat_stream.sse'), stream: true, splitBytes: 7 });
  await exchange({ op: 'chat', path: '/v1/chat/completions', requestBytes: chatReq('gpt-m-split-json'), responseBytes: fixture('chat.json'), splitBytes: 5 });
  await exchange({ op: 'image_generation', path: '/v1/images/generations', requestBytes: Buffer.from('{"model":"gpt-image-1","prompt":"pixel"}'), responseBytes: fixture('image.json') });
});

test('replay recorded cases (chat, embeddings, legacy completions)', async (t) => {
  if (!haveTestdata()) {
    t.skip('../shared/testdata not found');
    return;
  }
  for (const c of chatReplayCases()) {
    for (const it of c.interactions) {
      const responseBytes = caseFile(c, it.responseFile);
      let requestBytes = caseFile(c, it.requestFile);
      if (!requestBytes) {
        requestBytes = Buffer.from(JSON.stringify({ model: `rec-${c.name.slice(0, 24)}`, messages: [{ role: 'user', content: 'r' }], ...(it.stream ? { stream: true, stream_options: { include_usage: true } } : {}) }));
      }
      await exchange({ op: 'chat', path: '/v1/chat/completions', requestBytes, responseBytes, stream: it.stream, contentType: it.contentType });
      replayedRecorded++;
    }
  }
  for (const c of listOpenAICases()) {
    const it = c.interactions[0];
    if (c.interactions.length !== 1 || it.status !== 200 || !it.requestFile) continue;
    if (c.category === 'embeddings' && it.path === '/v1/embeddings') {
      await exchange({ op: 'embeddings', path: '/v1/embeddings', requestBytes: caseFile(c, it.requestFile), responseBytes: caseFile(c, it.responseFile), contentType: it.contentType });
      replayedRecorded++;
    } else if (c.category === 'legacy-completions' && it.path === '/v1/completions') {
      await exchange({ op: 'completion', path: '/v1/completions', requestBytes: caseFile(c, it.requestFile), responseBytes: caseFile(c, it.responseFile), stream: it.stream, contentType: it.contentType });
      replayedRecorded++;
    }
  }
  assert.ok(replayedRecorded >= 40, `replayed ${replayedRecorded} recorded exchanges`);
});

test('token usage histogram sums and counts equal the replayed usage, per operation and model', async (t) => {
  const samples = parseProm(await gw.metricsText());
  const name = 'gen_ai_client_token_usage_token';
  const sums = select(samples, `${name}_sum`);
  assert.ok(sums.length > 0, 'gen_ai_client_token_usage_token_sum present');
  for (const s of sums) {
    assert.equal(s.labels.gen_ai_provider_name, 'openai', 'provider label');
    assert.ok(['input', 'cached_input', 'cache_creation_input', 'output'].includes(s.labels.gen_ai_token_type), `token type ${s.labels.gen_ai_token_type}`);
    assert.equal(s.labels.gen_ai_request_model, s.labels.gen_ai_original_model, 'no override: request model = original model');
  }
  const problems = [];
  for (const [k, e] of expected) {
    const [op, original, responseModel] = k.split('|');
    const m = { gen_ai_operation_name: op, gen_ai_original_model: original, gen_ai_response_model: responseModel };
    const got = {
      input: total(samples, `${name}_sum`, { ...m, gen_ai_token_type: 'input' }),
      output: total(samples, `${name}_sum`, { ...m, gen_ai_token_type: 'output' }),
      cached: total(samples, `${name}_sum`, { ...m, gen_ai_token_type: 'cached_input' }),
      samples: total(samples, `${name}_count`, { ...m, gen_ai_token_type: 'input' }),
    };
    const want = { input: e.input, output: e.output, cached: e.cached, samples: e.samples };
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${k}: got ${JSON.stringify(got)} want ${JSON.stringify(want)}`);
  }
  assert.deepEqual(problems, [], `token usage mismatches:\n${problems.join('\n')}`);
  t.diagnostic(`compared ${expected.size} (operation, model, response model) series from ${exchanges.length} exchanges`);
  // Nothing beyond what was replayed.
  const allInput = [...expected.values()].reduce((a, e) => a + e.input, 0);
  assert.equal(total(samples, `${name}_sum`, { gen_ai_token_type: 'input' }), allInput, 'total input tokens');
});

test('histograms are well-formed: +Inf bucket equals count, buckets cumulative', async () => {
  const samples = parseProm(await gw.metricsText());
  const buckets = samples.filter((s) => s.name.endsWith('_bucket') && s.name.startsWith('gen_ai_'));
  assert.ok(buckets.length > 0);
  const series = new Map();
  for (const b of buckets) {
    const { le, ...rest } = b.labels;
    const key = `${b.name.slice(0, -7)}|${JSON.stringify(Object.entries(rest).sort())}`;
    if (!series.has(key)) series.set(key, { base: b.name.slice(0, -7), labels: rest, points: [] });
    series.get(key).points.push({ le: le === '+Inf' ? Infinity : Number(le), v: b.value });
  }
  for (const { base, labels, points } of series.values()) {
    points.sort((a, b) => a.le - b.le);
    for (let i = 1; i < points.length; i++) assert.ok(points[i].v >= points[i - 1].v, `${base} buckets cumulative`);
    assert.equal(points.at(-1).le, Infinity, `${base} has a +Inf bucket`);
    const count = total(samples, `${base}_count`, labels);
    assert.equal(points.at(-1).v, count, `${base} +Inf bucket equals _count for ${JSON.stringify(labels)}`);
  }
});

test('request duration counted per operation; time to first token and per output token only for streams', async () => {
  const samples = parseProm(await gw.metricsText());
  for (const [op, n] of requestsByOp) {
    assert.equal(total(samples, 'gen_ai_server_request_duration_seconds_count', { gen_ai_operation_name: op }), n, `request duration count for ${op}`);
    const streams = streamsByOp.get(op) || 0;
    assert.equal(total(samples, 'gen_ai_server_time_to_first_token_seconds_count', { gen_ai_operation_name: op }), streams, `TTFT count for ${op}`);
    const tpot = total(samples, 'gen_ai_server_time_per_output_token_seconds_count', { gen_ai_operation_name: op });
    assert.ok(tpot <= streams, `TPOT only for streams (${op}: ${tpot} > ${streams})`);
  }
  assert.ok(total(samples, 'gen_ai_server_time_per_output_token_seconds_count', { gen_ai_operation_name: 'chat' }) >= 1, 'TPOT recorded for chat streams');
  assert.ok(total(samples, 'gen_ai_server_request_duration_seconds_sum', {}) > 0);
});

test('access log: one line per request with model, tokens, status, duration, upstream host', async () => {
  await gw.waitForLogs(exchanges.length);
  assert.deepEqual(gw.nonJsonStdout, []);
  const problems = [];
  exchanges.forEach((ex, i) => {
    const l = gw.logs[i];
    if (!l) { problems.push(`#${i}: no line`); return; }
    if (l.genai_model_name !== ex.model) problems.push(`#${i}: genai_model_name ${l.genai_model_name} != ${ex.model}`);
    if (Number(l.response_code) !== 200) problems.push(`#${i}: response_code ${l.response_code}`);
    if (!Number.isFinite(Number(l.duration)) || l.duration === null) problems.push(`#${i}: duration ${l.duration}`);
    if (l.upstream_host !== `127.0.0.1:${fake.port}`) problems.push(`#${i}: upstream_host ${l.upstream_host}`);
    if (typeof l.genai_backend_name !== 'string' || !l.genai_backend_name) problems.push(`#${i}: genai_backend_name ${l.genai_backend_name}`);
    if (ex.usage) {
      if (Number(l.genai_tokens_input) !== ex.usage.input) problems.push(`#${i} ${ex.model}: genai_tokens_input ${l.genai_tokens_input} != ${ex.usage.input}`);
      if (ex.op !== 'embeddings' && Number(l.genai_tokens_output) !== ex.usage.output) problems.push(`#${i} ${ex.model}: genai_tokens_output ${l.genai_tokens_output} != ${ex.usage.output}`);
    }
  });
  assert.deepEqual(problems, [], problems.join('\n'));
});

test('an upstream error is counted with error_type and records no token usage', async () => {
  const before = parseProm(await gw.metricsText());
  const inputCountBefore = total(before, 'gen_ai_client_token_usage_token_count', { gen_ai_token_type: 'input' });
  fake.enqueue({ status: 500, body: '{"error":{"message":"boom","type":"server_error","param":null,"code":null}}' });
  const res = await post(gw, '/v1/chat/completions', JSON.stringify({ model: 'gpt-m-err', messages: [{ role: 'user', content: 'x' }] }));
  assert.equal(res.status, 500);
  await res.arrayBuffer();
  await gw.waitForLogs(exchanges.length + 1);
  const l = gw.logs[exchanges.length];
  assert.equal(Number(l.response_code), 500);
  assert.equal(l.genai_model_name, 'gpt-m-err');
  const after = parseProm(await gw.metricsText());
  assert.equal(total(after, 'gen_ai_client_token_usage_token_count', { gen_ai_token_type: 'input' }), inputCountBefore);
  const errs = select(after, 'gen_ai_server_request_duration_seconds_count', { gen_ai_operation_name: 'chat', gen_ai_original_model: 'gpt-m-err' });
  assert.ok(errs.length >= 1, 'the failed request has a duration sample');
  assert.ok(errs.every((s) => s.labels.error_type), 'failed requests carry error_type');
  const ok = select(after, 'gen_ai_server_request_duration_seconds_count', { gen_ai_original_model: 'gpt-m-chat' });
  assert.ok(ok.length >= 1 && ok.every((s) => !s.labels.error_type), 'successful requests carry no error_type');
});

test('no key in /metrics or in any access-log line', async () => {
  const text = await gw.metricsText();
  assert.ok(!text.includes(UPSTREAM_KEY) && !text.includes(CLIENT_KEY));
  const logs = JSON.stringify(gw.logs);
  assert.ok(!logs.includes(UPSTREAM_KEY), 'upstream key in access log');
  assert.ok(!logs.includes(CLIENT_KEY), 'client key in access log');
});

shutdownTest(() => [gw]);
