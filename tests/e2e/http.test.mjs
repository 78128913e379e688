// The HTTP/1.1 server side on raw sockets: keep-alive, pipelining, chunked request bodies,
// Expect: 100-continue, header size limit (431), body size limit (413, default 50 MiB and
// configurable), and slow clients closed after the header read time.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFakeOpenAI } from './lib/fake_openai.mjs';
import { startGateway, openaiEnv, T } from './lib/gateway.mjs';
import { RawConn, head, jsonRequest } from './lib/rawhttp.mjs';
import { assertStillServes, assertForwardedBody, parseErrorEnvelope, shutdownTest, assertUpstreamRequest } from './lib/common.mjs';

let fake;
let gw;        // defaults
let gwSmall;   // --max-request-body 4096 --header-timeout 1

before(async () => {
  fake = await startFakeOpenAI();
  gw = await startGateway({ env: openaiEnv(fake) });
  gwSmall = await startGateway({ env: openaiEnv(fake), args: ['--max-request-body', '4096', '--header-timeout', '1'] });
});
after(async () => {
  await gw?.close();
  await gwSmall?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const chatBody = (content) => JSON.stringify({ model: 'gpt-e2e', messages: [{ role: 'user', content }] });
const contentOf = (r) => JSON.parse(r.body.toString('utf8')).choices[0].message.content;

function assertJSONError(r, status) {
  assert.equal(r.status, status, `status (body: ${r.body.toString('utf8').slice(0, 200)})`);
  assert.match(r.headers['content-type'] || '', /application\/json/);
  return parseErrorEnvelope(r.body.toString('utf8'));
}

test('keep-alive: two requests on one connection', async () => {
  const c = await RawConn.connect(gw.port);
  try {
    await c.write(jsonRequest('/v1/chat/completions', chatBody('first')));
    await c.waitResponses(1);
    assert.equal(c.finals[0].status, 200);
    assert.equal(contentOf(c.finals[0]), 'echo: first');
    assert.notEqual((c.finals[0].headers.connection || '').toLowerCase(), 'close');
    await sleep(100);
    assert.equal(c.closed, false, 'connection kept open');
    await c.write(jsonRequest('/v1/chat/completions', chatBody('second')));
    await c.waitResponses(2);
    assert.equal(c.finals[1].status, 200);
    assert.equal(contentOf(c.finals[1]), 'echo: second');
    assert.equal(fake.requests.length, 2);
  } finally {
    c.destroy();
  }
});

test('pipelining: three requests in one write, three responses in order', async () => {
  const c = await RawConn.connect(gw.port);
  try {
    const reqs = ['one', 'two', 'three'].map((w) => jsonRequest('/v1/chat/completions', chatBody(w)));
    await c.write(Buffer.concat(reqs));
    await c.waitResponses(3, T(10_000));
    assert.deepEqual(c.finals.map((r) => r.status), [200, 200, 200]);
    assert.deepEqual(c.finals.map(contentOf), ['echo: one', 'echo: two', 'echo: three']);
    assert.equal(fake.requests.length, 3);
    // And a mix: a local endpoint, an error and a proxied request pipelined together.
    const mixed = Buffer.concat([
      Buffer.from(head('GET', '/v1/models', [['Host', 'x']])),
      jsonRequest('/v1/chat/completions', '{"model":'),
      jsonRequest('/v1/chat/completions', chatBody('four')),
    ]);
    await c.write(mixed);
    await c.waitResponses(6, T(10_000));
    assert.deepEqual(c.finals.slice(3).map((r) => r.status), [200, 400, 200]);
    assert.equal(contentOf(c.finals[5]), 'echo: four');
  } finally {
    c.destroy();
  }
});

test('pipelining with a stream in the middle: responses stay in order and complete', async () => {
  const sse = 'data: {"id":"s","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"mid"},"finish_reason":null}]}\n\ndata: [DONE]\n\n';
  const c = await RawConn.connect(gw.port);
  try {
    // The fake answers by request content: first and third are echoed, the second is a stream.
    fake.defaultSpec = (rec) => {
      const j = JSON.parse(rec.body.toString('utf8'));
      return j.stream ? { chunks: [sse.slice(0, 60), sse.slice(60)], delayMs: 150 } : null;
    };
    await c.write(Buffer.concat([
      jsonRequest('/v1/chat/completions', chatBody('before')),
      jsonRequest('/v1/chat/completions', JSON.stringify({ model: 'gpt-e2e', stream: true, messages: [{ role: 'user', content: 's' }] })),
      jsonRequest('/v1/chat/completions', chatBody('after')),
    ]));
    await c.waitResponses(3, T(10_000));
    assert.deepEqual(c.finals.map((r) => r.status), [200, 200, 200]);
    assert.equal(contentOf(c.finals[0]), 'echo: before');
    assert.equal(c.finals[1].body.toString('utf8'), sse);
    assert.equal(contentOf(c.finals[2]), 'echo: after');
  } finally {
    fake.defaultSpec = null;
    c.destroy();
  }
});

test('HTTP/1.0 request: answered, then the connection is closed', async () => {
  const body = chatBody('one-oh');
  const c = await RawConn.connect(gw.port);
  try {
    await c.write(`POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await c.waitResponses(1);
    assert.equal(c.finals[0].status, 200);
    assert.equal(contentOf(c.finals[0]), 'echo: one-oh');
    await c.waitClosed(T(3000));
  } finally {
    c.destroy();
  }
});

test('slow upstream reader: a 2 MiB body is delivered intact', async () => {
  const big = Buffer.from(JSON.stringify({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'z'.repeat(2 * 1024 * 1024) }] }));
  fake.enqueue({ slowRead: { bytesPerTick: 256 * 1024, tickMs: 40 } });
  const c = await RawConn.connect(gw.port);
  try {
    await c.write(jsonRequest('/v1/chat/completions', big));
    await c.waitResponses(1, T(15_000));
    assert.equal(c.finals[0].status, 200);
  } finally {
    c.destroy();
  }
  assertForwardedBody(fake.requests[0], big);
});

test('Connection: close is honoured (response then close)', async () => {
  const c = await RawConn.connect(gw.port);
  try {
    await c.write(jsonRequest('/v1/chat/completions', chatBody('bye'), [['Connection', 'close']]));
    await c.waitResponses(1);
    assert.equal(c.finals[0].status, 200);
    await c.waitClosed(T(3000));
  } finally {
    c.destroy();
  }
});

test('chunked request body is reassembled and forwarded byte-identical', async () => {
  const body = Buffer.from(JSON.stringify({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'chunked ' + 'é'.repeat(300) }] }, null, 1));
  const c = await RawConn.connect(gw.port);
  try {
    await c.write(head('POST', '/v1/chat/completions', [['Host', 'x'], ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']]));
    for (let i = 0; i < body.length; i += 37) {
      const part = body.subarray(i, i + 37);
      await c.write(Buffer.concat([Buffer.from(`${part.length.toString(16)};ext=1\r\n`), part, Buffer.from('\r\n')]));
      if (i % 148 === 0) await sleep(5);
    }
    await c.write('0\r\n\r\n');
    await c.waitResponses(1);
    assert.equal(c.finals[0].status, 200);
    assert.equal(fake.requests.length, 1);
    assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: body });
    // The connection stays usable after a chunked request.
    await c.write(jsonRequest('/v1/chat/completions', chatBody('after chunked')));
    await c.waitResponses(2);
    assert.equal(contentOf(c.finals[1]), 'echo: after chunked');
  } finally {
    c.destroy();
  }
});

test('Expect: 100-continue gets an interim 100 before the body is sent', async () => {
  const body = Buffer.from(chatBody('expect'));
  const c = await RawConn.connect(gw.port);
  try {
    await c.write(head('POST', '/v1/chat/completions', [['Host', 'x'], ['Content-Type', 'application/json'], ['Content-Length', String(body.length)], ['Expect', '100-continue']]));
    await c.waitFor((cc) => cc.responses.length >= 1, T(3000), '100 Continue');
    assert.equal(c.responses[0].status, 100);
    await c.write(body);
    await c.waitResponses(1);
    assert.equal(c.finals[0].status, 200);
    assert.equal(contentOf(c.finals[0]), 'echo: expect');
    assertForwardedBody(fake.requests[0], body);
  } finally {
    c.destroy();
  }
});

test('Expect: 100-continue with a too large Content-Length gets 413 without 100', async () => {
  const c = await RawConn.connect(gwSmall.port);
  try {
    await c.write(head('POST', '/v1/chat/completions', [['Host', 'x'], ['Content-Type', 'application/json'], ['Content-Length', '100000'], ['Expect', '100-continue']]));
    await c.waitResponses(1);
    assert.ok(!c.responses.some((r) => r.status === 100), 'no 100 Continue for a body that will be refused');
    assertJSONError(c.finals[0], 413);
    assert.equal(fake.requests.length, 0);
  } finally {
    c.destroy();
  }
  await assertStillServes(gwSmall, fake, '413 with expect');
});

test('oversized request head -> 431 JSON error, then still serves', async () => {
  const headers = [['Host', 'x'], ['Content-Type', 'application/json'], ['Content-Length', '2']];
  for (let i = 0; i < 64; i++) headers.push([`X-Big-${i}`, 'v'.repeat(4000)]);
  const c = await RawConn.connect(gw.port);
  try {
    await c.write(head('POST', '/v1/chat/completions', headers) + '{}');
    await c.waitResponses(1, T(5000));
    assertJSONError(c.finals[0], 431);
  } finally {
    c.destroy();
  }
  assert.equal(fake.requests.length, 0);
  await assertStillServes(gw, fake, '431');
});

test('body over --max-request-body -> 413 JSON error (content-length and chunked); at the limit passes', async () => {
  const pad = (n) => {
    const base = JSON.stringify({ model: 'gpt-e2e', messages: [{ role: 'user', content: '' }] });
    return Buffer.from(JSON.stringify({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'a'.repeat(n - base.length) }] }));
  };
  const atLimit = pad(4096);
  assert.equal(atLimit.length, 4096);
  let c = await RawConn.connect(gwSmall.port);
  try {
    await c.write(jsonRequest('/v1/chat/completions', atLimit));
    await c.waitResponses(1);
    assert.equal(c.finals[0].status, 200, 'a body of exactly the limit is accepted');
  } finally {
    c.destroy();
  }
  assertForwardedBody(fake.requests[0], atLimit);

  const over = pad(5000);
  c = await RawConn.connect(gwSmall.port);
  try {
    await c.write(jsonRequest('/v1/chat/completions', over));
    await c.waitResponses(1);
    assertJSONError(c.finals[0], 413);
  } finally {
    c.destroy();
  }

  c = await RawConn.connect(gwSmall.port);
  try {
    await c.write(head('POST', '/v1/chat/completions', [['Host', 'x'], ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']]));
    await c.write(Buffer.concat([Buffer.from(`${over.length.toString(16)}\r\n`), over, Buffer.from('\r\n0\r\n\r\n')]));
    await c.waitResponses(1);
    assertJSONError(c.finals[0], 413);
  } finally {
    c.destroy();
  }
  assert.equal(fake.requests.length, 1, 'oversized bodies never reach the upstream');
  await assertStillServes(gwSmall, fake, '413');
});

test('a 413 is access-logged with its status', async () => {
  const n = await gwSmall.settleLogs();
  const c = await RawConn.connect(gwSmall.port);
  try {
    await c.write(jsonRequest('/v1/chat/completions', Buffer.alloc(5000, 0x20)));
    await c.waitResponses(1);
    assert.equal(c.finals[0].status, 413);
  } finally {
    c.destroy();
  }
  const m = await gwSmall.settleLogs();
  assert.equal(m, n + 1, 'one access-log line for the refused request');
  assert.equal(Number(gwSmall.logs[m - 1].response_code), 413);
});

test('default body limit is 50 MiB: 50 MiB + 1 declared -> 413; a 20 MiB body passes intact', async () => {
  let c = await RawConn.connect(gw.port);
  try {
    await c.write(head('POST', '/v1/chat/completions', [['Host', 'x'], ['Content-Type', 'application/json'], ['Content-Length', String(50 * 1024 * 1024 + 1)]]));
    await c.waitResponses(1, T(5000));
    assertJSONError(c.finals[0], 413);
  } finally {
    c.destroy();
  }
  assert.equal(fake.requests.length, 0);

  const big = Buffer.from(JSON.stringify({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'b'.repeat(20 * 1024 * 1024) }] }));
  c = await RawConn.connect(gw.port);
  try {
    await c.write(jsonRequest('/v1/chat/completions', big));
    await c.waitResponses(1, T(20_000));
    assert.equal(c.finals[0].status, 200);
  } finally {
    c.destroy();
  }
  assert.equal(fake.requests.length, 1);
  assert.ok(fake.requests[0].body.equals(big), '20 MiB body forwarded byte-identical');
});

test('slow client: an unfinished request head is closed after --header-timeout', async () => {
  const c = await RawConn.connect(gwSmall.port);
  const t0 = Date.now();
  try {
    await c.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n');
    await c.waitClosed(T(5000));
    const took = c.closedAt - t0;
    assert.ok(took >= 700, `closed after the header timeout, not before (${took} ms)`);
    assert.ok(took <= T(4000), `closed within a bound (${took} ms)`);
    for (const r of c.finals) assert.ok([408].includes(r.status), `only a 408 may be sent, got ${r.status}`);
  } finally {
    c.destroy();
  }
  assert.equal(fake.requests.length, 0);
});

test('slowloris: a head trickling in byte by byte is closed after the header time, not kept alive', async () => {
  const c = await RawConn.connect(gwSmall.port);
  const t0 = Date.now();
  try {
    await c.write('POST /v1/chat/completions HTTP/1.1\r\n');
    const trickle = 'X-Slow: ' + 'a'.repeat(100);
    for (const ch of trickle) {
      if (c.closed) break;
      c.sock.write(ch);
      await sleep(100);
      if (Date.now() - t0 > T(6000)) break;
    }
    await c.waitClosed(T(2000));
    const took = c.closedAt - t0;
    assert.ok(took <= T(4000), `trickling head closed after about the header timeout (${took} ms)`);
  } finally {
    c.destroy();
  }
});

test('a connection that sends nothing is closed after the header timeout', async () => {
  const c = await RawConn.connect(gwSmall.port);
  try {
    await c.waitClosed(T(5000));
  } finally {
    c.destroy();
  }
  await assertStillServes(gwSmall, fake, 'idle connections closed');
});

shutdownTest(() => [gw, gwSmall]);
