// Streaming behaviour: events are forwarded as they come (not buffered), an upstream that fails
// mid-stream gives the client an SSE error event and a clean end (never a stream that looks
// complete), a client that goes away cancels the upstream request, a slow reader pauses the
// upstream with bounded gateway memory, and an idle upstream stream is cut after its timeout.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { startFakeOpenAI, splitSSE, sseOf } from './lib/fake_openai.mjs';
import { startGateway, openaiEnv, T, SANITIZED, CLIENT_KEY } from './lib/gateway.mjs';
import { post, assertStillServes, shutdownTest, assertSameBytes } from './lib/common.mjs';
import { fixture, sseDataObjects } from './lib/testdata.mjs';

let fake;
let gw;
let gwIdle;   // --stream-idle-timeout 1
let slowReaderRss = null;

before(async () => {
  fake = await startFakeOpenAI();
  gw = await startGateway({ env: openaiEnv(fake) });
  gwIdle = await startGateway({ env: openaiEnv(fake), args: ['--stream-idle-timeout', '1'] });
});
after(async () => {
  await gw?.close();
  await gwIdle?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const streamBody = (extra = {}) => JSON.stringify({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'stream please' }], stream: true, stream_options: { include_usage: true }, ...extra });

function chunkEvent(i, content) {
  return { id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1731000000, model: 'gpt-e2e', choices: [{ index: 0, delta: { content }, finish_reason: null }], n: i };
}

/** SSE blocks of a text (each block's data joined), with the raw text of each block. */
function sseBlocks(text) {
  return text.split('\n\n').filter((b) => b.trim()).map((raw) => {
    const lines = raw.split('\n');
    const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim() ?? null;
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
    return { raw, event, data };
  });
}

/** The client-visible contract for a failed stream: earlier events intact, then an SSE error
 * event, no [DONE], and a clean end of the HTTP body. */
function assertStreamErrorEnding(text, prefix) {
  assert.ok(text.startsWith(prefix.toString('utf8')), `events before the failure arrive intact; got: ${text.slice(0, 300)}`);
  assert.ok(!text.includes('data: [DONE]'), 'a failed stream never ends with [DONE]');
  const tail = sseBlocks(text.slice(prefix.length));
  const errs = tail.filter((b) => {
    if (b.event === 'error') return true;
    try { return !!JSON.parse(b.data).error; } catch { return false; }
  });
  assert.ok(errs.length >= 1, `an SSE error event follows the last good event; tail: ${JSON.stringify(text.slice(prefix.length, prefix.length + 500))}`);
  const j = JSON.parse(errs[0].data);
  const err = j.error ?? j;
  assert.equal(typeof err.message, 'string', 'error event carries a message');
  assert.ok(err.message.length > 0);
}

test('events are forwarded as they arrive, not buffered', async () => {
  const events = [0, 1, 2, 3, 4, 5].map((i) => chunkEvent(i, `w${i} `));
  fake.enqueue({ sse: sseOf(events), delayMs: 250 });
  const client = gw.client();
  const t0 = Date.now();
  const stream = await client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } });
  const arrivals = [];
  for await (const ch of stream) arrivals.push({ at: Date.now() - t0, ch });
  assert.equal(arrivals.length, 6);
  assert.equal(arrivals.map((a) => a.ch.choices[0].delta.content).join(''), 'w0 w1 w2 w3 w4 w5 ');
  const spread = arrivals.at(-1).at - arrivals[0].at;
  assert.ok(spread >= 900, `chunks spread over time like the upstream sent them (${spread} ms) - the gateway must not buffer the stream`);
  assert.ok(arrivals[0].at < arrivals.at(-1).at - 900, 'first chunk well before the last');
});

test('upstream dies mid-stream (between events): SSE error event, no [DONE], clean end; SDK raises', async () => {
  const sse = fixture('chat_stream.sse');
  const events = splitSSE(sse);
  const prefix = Buffer.concat(events.slice(0, 3));

  fake.enqueue({ chunks: events, failAfterChunks: 3, delayMs: 10 });
  const res = await post(gw, '/v1/chat/completions', streamBody());
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const text = await res.text(); // throws on a truncated chunked body: the end must be clean
  assertStreamErrorEnding(text, prefix);

  fake.enqueue({ chunks: events, failAfterChunks: 3, delayMs: 10 });
  const client = gw.client();
  const got = [];
  await assert.rejects(async () => {
    const s = await client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } });
    for await (const ch of s) got.push(ch);
  }, (e) => e instanceof OpenAI.APIError, 'the SDK raises an APIError from the SSE error event');
  assert.deepEqual(JSON.parse(JSON.stringify(got)), sseDataObjects(prefix));
  await assertStillServes(gw, fake, 'mid-stream failure');
});

test('upstream dies in the middle of an event: the client never sees a complete-looking stream', async () => {
  const events = [0, 1, 2, 3].map((i) => Buffer.from(sseOf([chunkEvent(i, `p${i}`)], { done: false })));
  const partial = events[2].subarray(0, 40);
  fake.enqueue({ chunks: [events[0], events[1], partial], failAfterChunks: 3, delayMs: 10 });
  const res = await post(gw, '/v1/chat/completions', streamBody());
  const text = await res.text();
  assert.ok(text.startsWith(Buffer.concat([events[0], events[1]]).toString()), 'whole events before the failure arrive');
  assert.ok(!text.includes('data: [DONE]'));
  const blocks = sseBlocks(text);
  assert.ok(blocks.some((b) => b.event === 'error' || /"error"/.test(b.data)), `an error event is sent: ${JSON.stringify(text.slice(-300))}`);

  fake.enqueue({ chunks: [events[0], events[1], partial], failAfterChunks: 3, delayMs: 10 });
  const client = gw.client();
  await assert.rejects(async () => {
    const s = await client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'x' }], stream: true });
    for await (const _ of s) { /* drain */ }
  }, 'the SDK raises rather than returning a short stream as if complete');
  await assertStillServes(gw, fake, 'partial event failure');
});

test('upstream stream with no [DONE] and a clean close is passed through as-is when the upstream ended it', async () => {
  // Control case for the two tests above: an upstream that ends its body cleanly (no socket error)
  // is not an upstream failure; the gateway forwards the bytes unchanged.
  const body = sseOf([chunkEvent(0, 'a'), chunkEvent(1, 'b')]);
  fake.enqueue({ sse: body });
  const res = await post(gw, '/v1/chat/completions', streamBody());
  assertSameBytes(Buffer.from(await res.arrayBuffer()), Buffer.from(body));
});

test('client abort mid-stream (SDK AbortController) cancels the upstream request', async () => {
  const events = Array.from({ length: 100 }, (_, i) => chunkEvent(i, `t${i}`));
  fake.enqueue({ sse: sseOf(events), delayMs: 100 });
  const client = gw.client();
  const ac = new AbortController();
  const s = await client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'x' }], stream: true }, { signal: ac.signal });
  let n = 0;
  try {
    // The SDK ends the iteration quietly on abort (or raises an abort error): either is fine.
    for await (const _ of s) {
      if (++n === 2) ac.abort();
      if (n > 2) break;
    }
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIUserAbortError || e.name === 'AbortError', `abort error expected, got ${e}`);
  }
  assert.ok(n >= 2);
  await fake.waitFor((f) => f.requests[0] && f.requests[0].aborted, T(3000), 'the upstream request to be cancelled after the client left');
  assert.ok(fake.requests[0].bytesWritten < Buffer.byteLength(sseOf(events)), 'upstream did not run to completion');
  await assertStillServes(gw, fake, 'client abort');
});

test('client socket destroyed mid-stream cancels the upstream request', async () => {
  const events = Array.from({ length: 100 }, (_, i) => chunkEvent(i, `u${i}`));
  fake.enqueue({ sse: sseOf(events), delayMs: 100 });
  const body = streamBody();
  const sock = net.connect(gw.port, '127.0.0.1');
  let got = '';
  sock.on('data', (d) => { got += d.toString('latin1'); });
  sock.on('error', () => {});
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${CLIENT_KEY}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const deadline = Date.now() + T(5000);
  while (!got.includes('"u1"') && Date.now() < deadline) await sleep(10);
  assert.ok(got.includes('"u1"'), 'two events received before leaving');
  sock.destroy();
  await fake.waitFor((f) => f.requests[0] && f.requests[0].aborted, T(3000), 'the upstream request to be cancelled after the client socket closed');
  await assertStillServes(gw, fake, 'client socket destroyed');
});

test('slow reader: the upstream is paused (backpressure) and gateway memory stays bounded', async (t) => {
  const totalBytes = 64 * 1024 * 1024;
  fake.enqueue({ generate: { totalBytes, eventBytes: 16 * 1024 } });
  const body = streamBody();
  let maxRss = 0;
  const baseRss = gw.rss();
  const sampler = setInterval(() => { try { maxRss = Math.max(maxRss, gw.rss()); } catch { /* exited */ } }, 20);
  try {
    const result = await new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: gw.port, method: 'POST', path: '/v1/chat/completions',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${CLIENT_KEY}` },
      }, async (res) => {
        let received = 0;
        let tail = Buffer.alloc(0);
        res.on('data', (d) => {
          received += d.length;
          tail = Buffer.concat([tail, d]).subarray(-256);
        });
        res.on('end', () => resolve({ status: res.statusCode, received, tail: tail.toString('utf8'), pausedProgress }));
        res.on('error', reject);
        // Phase 1: do not read at all for a while.
        res.pause();
        await sleep(1500);
        const pausedProgress = fake.requests[0] ? fake.requests[0].bytesWritten : 0;
        // Phase 2: read slowly (20 ms on, 40 ms off) for a second.
        for (let i = 0; i < 16; i++) {
          res.resume();
          await sleep(20);
          res.pause();
          await sleep(40);
        }
        // Phase 3: read the rest at full speed.
        res.resume();
      });
      req.on('error', reject);
      req.setTimeout(T(60_000), () => req.destroy(new Error('slow reader test timed out')));
      req.end(body);
    });
    slowReaderRss = { maxRss, baseRss };
    t.diagnostic(`upstream written while the client was paused: ${(result.pausedProgress / 1048576).toFixed(1)} MiB; gateway VmRSS start ${(baseRss / 1048576).toFixed(1)} MB, max ${(maxRss / 1048576).toFixed(1)} MB`);
    assert.equal(result.status, 200);
    assert.ok(result.tail.includes('data: [DONE]'), 'the whole stream arrives, ending with [DONE]');
    assert.ok(result.received >= totalBytes, `received ${result.received} of at least ${totalBytes} bytes`);
    assert.ok(result.pausedProgress < totalBytes / 2,
      `while the client did not read, the upstream was paused: it wrote ${(result.pausedProgress / 1048576).toFixed(1)} MiB of ${totalBytes / 1048576} MiB`);
  } finally {
    clearInterval(sampler);
  }
});

test('slow reader: gateway VmRSS stayed under 100 MB during the 64 MiB stream',
  { skip: SANITIZED ? 'ASan build: the sanitizer inflates memory, so the RSS bound is not checked' : false }, () => {
    assert.ok(slowReaderRss, 'the slow-reader test ran');
    const { maxRss, baseRss } = slowReaderRss;
    assert.ok(maxRss > 0, 'RSS was sampled');
    assert.ok(maxRss < 100 * 1024 * 1024, `gateway VmRSS stayed under 100 MB (max ${(maxRss / 1048576).toFixed(1)} MB, start ${(baseRss / 1048576).toFixed(1)} MB)`);
  });

test('idle upstream stream is cut after --stream-idle-timeout with an SSE error event', async () => {
  const events = splitSSE(fixture('chat_stream.sse'));
  const prefix = Buffer.concat(events.slice(0, 2));
  fake.enqueue({ chunks: events, hangAfterChunks: 2 });
  const t0 = Date.now();
  const res = await post(gwIdle, '/v1/chat/completions', streamBody(), { timeoutMs: T(15_000) });
  const text = await res.text();
  const took = Date.now() - t0;
  assert.ok(took >= 800 && took < T(6000), `stream ended about the idle timeout after the last event (${took} ms)`);
  assertStreamErrorEnding(text, prefix);
  await fake.waitFor((f) => f.requests[0].aborted, T(3000), 'the idle upstream request to be closed');
  await assertStillServes(gwIdle, fake, 'idle stream timeout');
});

test('20 concurrent streams all complete intact', async () => {
  const sse = fixture('chat_stream.sse');
  for (let i = 0; i < 20; i++) fake.enqueue({ chunks: splitSSE(sse), delayMs: 20 });
  const client = gw.client();
  const results = await Promise.all(Array.from({ length: 20 }, async () => {
    const s = await client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } });
    const got = [];
    for await (const ch of s) got.push(ch);
    return got;
  }));
  for (const got of results) assert.deepEqual(JSON.parse(JSON.stringify(got)), sseDataObjects(sse));
  assert.equal(fake.requests.length, 20);
});

shutdownTest(() => [gw, gwIdle]);
