// Traffic policy end to end with several fake upstreams: a weighted split over 2,000 requests
// within a computed binomial tolerance, priority fallback when priority 0 is down (connect
// failure) and when it answers 503 (each attempt re-translated: its own modelNameOverride and
// header mutation), retries counted exactly (upstream attempts and aigw_upstream_retries_total),
// perRetry.timeout abandoning a hanging attempt, no retry once the response has started, no
// retry without a BackendTrafficPolicy, passive health (a failed backend is skipped for a
// while without paying a failed attempt, then comes back by itself), header mutations at backend
// and route level (route wins on set, removes unioned, x-ai-eg-* and pseudo headers protected)
// and modelNameOverride as the upstream sees it.
// One worker: passive health state is per worker, so one worker makes "the next request skips
// the ejected backend" deterministic.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startFakeOpenAI } from './lib/fake_openai.mjs';
import { startGateway, closedPort, runAigw, tmpDir, fetchT, T, CLIENT_KEY } from './lib/gateway.mjs';
import { post, shutdownTest, assertSameBytes } from './lib/common.mjs';
import { parseProm, total } from './lib/prom.mjs';
import { setTimeout as sleep } from 'node:timers/promises';
import { joinDocs, gatewayDoc, routeDoc, backendDocs, btpDoc, chat, runConcurrent, binomialBounds, problemLines } from './lib/resources.mjs';

const EJECTION = '1s';
const KEY = (n) => `sk-fb-${n}-0123456789`;
const ERR503 = { status: 503, body: { error: { message: 'fake: overloaded', type: 'server_error', param: null, code: null } } };
const ERR500 = { status: 500, body: { error: { message: 'fake: internal', type: 'server_error', param: null, code: null } } };

let A; let B; let C; let P0; let P1; let R; let H;
let deadPort;
let gw;
let dir;

function config(port) {
  return joinDocs(
    gatewayDoc({ port }),
    routeDoc({
      name: 'fb-route',
      rules: [
        { model: 'weighted-model', backends: [{ name: 'svc-a', weight: 3 }, { name: 'svc-b', weight: 1 }, { name: 'svc-c', weight: 0 }] },
        { model: 'down-model', backends: [{ name: 'svc-dead', priority: 0 }, { name: 'svc-b', priority: 1 }] },
        {
          model: 'p503-model',
          backends: [
            { name: 'svc-p0', priority: 0, override: 'm-tier0', headerMutation: { set: [['x-tier', '0'], ['x-only-tier0', 'yes']] } },
            { name: 'svc-p1', priority: 1, override: 'm-tier1', headerMutation: { set: [['x-tier', '1']] } },
          ],
        },
        { model: 'retry-model', backends: [{ name: 'svc-r' }] },
        {
          model: 'hm-model',
          backends: [{
            name: 'svc-h',
            headerMutation: { set: [['x-both', 'from-route'], ['x-route-only', 'r'], ['X-Shared-Case', 'route']], remove: ['x-client-remove-r', 'x-both-remove'] },
          }],
        },
        { model: 'ov-model', backends: [{ name: 'svc-a', override: 'upstream-real-model' }] },
      ],
    }),
    routeDoc({
      name: 'plain-route',
      rules: [{ model: 'noretry-model', backends: [{ name: 'svc-q0', priority: 0 }, { name: 'svc-q1', priority: 1 }] }],
    }),
    routeDoc({ name: 'timeout-route', rules: [{ model: 'slow-model', backends: [{ name: 'svc-s' }] }] }),
    btpDoc({ name: 'timeout-btp', route: 'timeout-route', numRetries: 1, perRetryTimeout: '300ms', triggers: ['5xx'], httpStatusCodes: [] }),
    backendDocs({ name: 'svc-s', port: R.port, key: KEY('s') }),
    routeDoc({ name: 'eject-route', rules: [{ model: 'eject-model', backends: [{ name: 'svc-e0', priority: 0 }, { name: 'svc-e1', priority: 1 }] }] }),
    btpDoc({ name: 'eject-btp', route: 'eject-route', numRetries: 1, httpStatusCodes: [503], passive: { consecutive5XxErrors: 2, baseEjectionTime: '2s' } }),
    backendDocs({ name: 'svc-e0', port: P0.port, key: KEY('e0') }),
    backendDocs({ name: 'svc-e1', port: P1.port, key: KEY('e1') }),
    btpDoc({ name: 'fb-btp', route: 'fb-route', numRetries: 3, httpStatusCodes: [503], passive: { baseEjectionTime: EJECTION } }),
    backendDocs({ name: 'svc-a', port: A.port, key: KEY('a') }),
    backendDocs({ name: 'svc-b', port: B.port, key: KEY('b') }),
    backendDocs({ name: 'svc-c', port: C.port, key: KEY('c') }),
    backendDocs({ name: 'svc-dead', port: deadPort, key: KEY('dead') }),
    backendDocs({ name: 'svc-p0', port: P0.port, key: KEY('p0') }),
    backendDocs({ name: 'svc-p1', port: P1.port, key: KEY('p1') }),
    backendDocs({ name: 'svc-q0', port: P0.port, key: KEY('q0') }),
    backendDocs({ name: 'svc-q1', port: P1.port, key: KEY('q1') }),
    backendDocs({ name: 'svc-r', port: R.port, key: KEY('r') }),
    backendDocs({
      name: 'svc-h', port: H.port, key: KEY('h'),
      headerMutation: { set: [['x-backend-only', 'b'], ['x-both', 'from-backend'], ['x-shared-case', 'backend']], remove: ['x-client-remove-b', 'x-both-remove'] },
    }),
  );
}

async function retries() {
  return total(parseProm(await gw.metricsText()), 'aigw_upstream_retries_total');
}

function headerCount(rec, name) {
  let n = 0;
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if (rec.rawHeaders[i].toLowerCase() === name) n++;
  return n;
}

before(async () => {
  dir = tmpDir('aigw-e2e-fallback-');
  [A, B, C, P0, P1, R, H] = await Promise.all(Array.from({ length: 7 }, () => startFakeOpenAI()));
  deadPort = await closedPort();
  gw = await startGateway({ config: (g) => config(g.port), workers: 1 });
});
after(async () => {
  await gw?.close();
  for (const f of [A, B, C, P0, P1, R, H]) await f?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => { for (const f of [A, B, C, P0, P1, R, H]) f.reset(); });

test('weighted split 3:1:0 over 2,000 requests within 5 sigma; weight 0 gets nothing', async () => {
  const N = 2000;
  const res = await runConcurrent(N, 16, (i) => chat(gw, 'weighted-model', { content: `w${i}` }));
  const failed = res.filter((r) => r.error || r.status !== 200);
  assert.equal(failed.length, 0, `failed requests: ${failed.slice(0, 3).map((r) => r.error?.message || `${r.status} ${r.text}`).join(' | ')}`);
  const a = A.requests.length;
  const b = B.requests.length;
  assert.equal(C.requests.length, 0, 'weight 0 is never chosen');
  assert.equal(a + b, N);
  const { lo, hi, mean, sigma } = binomialBounds(N, 3 / 4, 5);
  assert.ok(a >= lo && a <= hi, `weight-3 backend got ${a}, expected ${mean} ± 5σ (σ=${sigma.toFixed(1)}): [${lo}, ${hi}]`);
  for (const r of A.requests) assert.equal(r.headers.authorization, `Bearer ${KEY('a')}`);
  for (const r of B.requests) assert.equal(r.headers.authorization, `Bearer ${KEY('b')}`);
});

test('priority 0 down (connect failure): the first request falls back to priority 1 with one retry; the next ones skip it', async () => {
  const r0 = await retries();
  const first = await chat(gw, 'down-model', { content: 'first' });
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.choices[0].message.content, 'echo: first');
  assert.equal(B.requests.length, 1);
  assert.equal(B.requests[0].headers.authorization, `Bearer ${KEY('b')}`);
  assert.equal(await retries(), r0 + 1, 'exactly one retry (the connect failure)');
  const t0 = Date.now();
  for (let i = 0; i < 5; i++) {
    const r = await chat(gw, 'down-model', { content: `next${i}` });
    assert.equal(r.status, 200, r.text);
  }
  assert.equal(B.requests.length, 6);
  if (Date.now() - t0 < 800) assert.equal(await retries(), r0 + 1, 'ejected priority 0 skipped: no failed attempt paid');
});

test('priority 0 answers 503: retried on priority 1, each attempt with its own override and headers; passive health skips then restores priority 0', async () => {
  const r0 = await retries();
  P0.defaultSpec = ERR503;
  const sent = JSON.stringify({ model: 'p503-model', messages: [{ role: 'user', content: 'tiers' }], temperature: 0.5 });
  const res = await post(gw, '/v1/chat/completions', sent);
  const text = await res.text();
  const tFail = Date.now();
  assert.equal(res.status, 200, text);
  assert.equal(P0.requests.length, 1, 'priority 0 tried once');
  assert.equal(P1.requests.length, 1, 'priority 1 answered');
  assert.equal(await retries(), r0 + 1);
  const [q0] = P0.requests;
  const [q1] = P1.requests;
  assertSameBytes(q0.body, sent.replace('"model":"p503-model"', '"model":"m-tier0"'), 'attempt 1 body');
  assertSameBytes(q1.body, sent.replace('"model":"p503-model"', '"model":"m-tier1"'), 'attempt 2 body (re-translated from the original)');
  assert.equal(q0.headers['x-tier'], '0');
  assert.equal(q0.headers['x-only-tier0'], 'yes');
  assert.equal(q1.headers['x-tier'], '1', 'the retry carries its own backend headers');
  assert.equal(headerCount(q1, 'x-tier'), 1);
  assert.equal(q1.headers['x-only-tier0'], undefined, "headers of the previous attempt's backend are not kept");
  assert.equal(q0.headers.authorization, `Bearer ${KEY('p0')}`);
  assert.equal(q1.headers.authorization, `Bearer ${KEY('p1')}`);

  // Priority 0 is healthy again but ejected: the next requests go to priority 1 directly.
  P0.defaultSpec = null;
  for (let i = 0; i < 5; i++) {
    const r = await chat(gw, 'p503-model', { content: `skip${i}` });
    assert.equal(r.status, 200, r.text);
  }
  const skipped = Date.now() - tFail;
  if (skipped < 800) {
    assert.equal(P0.requests.length, 1, 'ejected backend not tried');
    assert.equal(P1.requests.length, 6);
    assert.equal(await retries(), r0 + 1, 'no failed attempt paid while ejected');
  }

  // It comes back by itself.
  const deadline = Date.now() + T(6000);
  while (P0.requests.length < 2 && Date.now() < deadline) {
    const r = await chat(gw, 'p503-model', { content: 'probe' });
    assert.equal(r.status, 200, r.text);
    await sleep(50);
  }
  const back = Date.now() - tFail;
  assert.equal(P0.requests.length, 2, `priority 0 never came back (waited ${back} ms)`);
  assert.ok(back >= 400, `priority 0 came back after only ${back} ms (ejection ${EJECTION})`);
  const r = await chat(gw, 'p503-model', { content: 'after' });
  assert.equal(r.status, 200);
  assert.equal(P0.requests.length, 3, 'priority 0 takes the traffic again');
});

test('healthCheck.passive from the BackendTrafficPolicy: ejected after 2 consecutive failures, for 2 s', async () => {
  P0.enqueue(ERR503);
  const r1 = await chat(gw, 'eject-model', { content: 'e1' });
  assert.equal(r1.status, 200, r1.text);
  assert.equal(P0.requests.length, 1);
  P0.enqueue(ERR503);
  const r2 = await chat(gw, 'eject-model', { content: 'e2' });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(P0.requests.length, 2, 'one failure does not eject (consecutive5XxErrors: 2)');
  const tEject = Date.now();
  assert.equal(P1.requests.length, 2);
  // Ejected: still skipped after 1.2 s (longer than the 1 s default).
  await sleep(1200);
  const r3 = await chat(gw, 'eject-model', { content: 'e3' });
  assert.equal(r3.status, 200);
  if (Date.now() - tEject < 1900) assert.equal(P0.requests.length, 2, 'still ejected 1.2 s later (baseEjectionTime 2s)');
  const deadline = Date.now() + T(4000);
  while (P0.requests.length < 3 && Date.now() < deadline) {
    await chat(gw, 'eject-model', { content: 'probe' });
    await sleep(50);
  }
  const back = Date.now() - tEject;
  assert.equal(P0.requests.length, 3, `priority 0 back (after ${back} ms)`);
  assert.ok(back >= 1800, `came back after ${back} ms (baseEjectionTime 2s)`);
});

test('retries counted exactly: 503, 503, 200 -> 3 attempts, 2 retries, identical bodies', async () => {
  const r0 = await retries();
  R.enqueue(ERR503, ERR503);
  const sent = JSON.stringify({ model: 'retry-model', messages: [{ role: 'user', content: 'again' }] });
  const res = await post(gw, '/v1/chat/completions', sent);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.equal(JSON.parse(text).choices[0].message.content, 'echo: again');
  assert.equal(R.requests.length, 3);
  for (const q of R.requests) assertSameBytes(q.body, sent, `attempt ${q.seq} body`);
  assert.equal(await retries(), r0 + 2);
});

test('retries exhausted: numRetries 3 -> exactly 4 attempts, the last 503 returned', async () => {
  const r0 = await retries();
  R.enqueue(ERR503, ERR503, ERR503, ERR503, { body: { never: 'used' } });
  const res = await post(gw, '/v1/chat/completions', JSON.stringify({ model: 'retry-model', messages: [{ role: 'user', content: 'x' }] }));
  const text = await res.text();
  assert.equal(res.status, 503, text);
  assert.equal(JSON.parse(text).error.message, 'fake: overloaded');
  assert.equal(R.requests.length, 4, '1 attempt + 3 retries');
  assert.equal(await retries(), r0 + 3);
});

test('a status not in retryOn (500) is not retried', async () => {
  const r0 = await retries();
  R.enqueue(ERR500);
  const res = await post(gw, '/v1/chat/completions', JSON.stringify({ model: 'retry-model', messages: [{ role: 'user', content: 'x' }] }));
  const text = await res.text();
  assert.equal(res.status, 500, text);
  assert.equal(R.requests.length, 1);
  assert.equal(await retries(), r0);
});

test('perRetry.timeout: a hanging attempt is abandoned after 300 ms and retried (trigger 5xx)', async () => {
  const r0 = await retries();
  R.enqueue({ hang: true });
  const t0 = Date.now();
  const r = await chat(gw, 'slow-model', { content: 'slow' });
  const ms = Date.now() - t0;
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].message.content, 'echo: slow');
  assert.equal(R.requests.length, 2);
  assert.ok(ms >= 280 && ms < T(3000), `answered after ${ms} ms (per-try timeout 300 ms)`);
  await R.waitFor((f) => f.requests[0].aborted, T(2000), 'the abandoned attempt closed');
  assert.equal(await retries(), r0 + 1);
});

test('no retry once the response has started: an upstream dying mid-stream is not retried', async () => {
  const r0 = await retries();
  const base = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm' };
  R.enqueue({ sse: [{ ...base, choices: [{ index: 0, delta: { content: 'part' }, finish_reason: null }] }, { ...base, choices: [] }], failAfterChunks: 1 });
  const res = await post(gw, '/v1/chat/completions', JSON.stringify({ model: 'slow-model', stream: true, messages: [{ role: 'user', content: 'x' }] }));
  assert.equal(res.status, 200);
  const text = await res.text().catch((e) => `read error: ${e.message}`);
  assert.ok(!text.includes('data: [DONE]'), 'a truncated stream does not look complete');
  assert.equal(R.requests.length, 1, 'not retried after the head was sent');
  assert.equal(await retries(), r0);
});

test('without a BackendTrafficPolicy there is no retry; passive health still moves the next request to priority 1', async () => {
  const r0 = await retries();
  P0.defaultSpec = ERR503;
  const r1 = await chat(gw, 'noretry-model', { content: 'one' });
  assert.equal(r1.status, 503, r1.text);
  assert.equal(P0.requests.length, 1);
  assert.equal(P1.requests.length, 0);
  assert.equal(await retries(), r0);
  P0.defaultSpec = null;
  const r2 = await chat(gw, 'noretry-model', { content: 'two' });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(P1.requests.length, 1, 'ejected priority 0 skipped');
  assert.equal(P1.requests[0].headers.authorization, `Bearer ${KEY('q1')}`);
});

test('header mutations: backend and route level; route wins on set, removes unioned, client credentials dropped', async () => {
  const r = await chat(gw, 'hm-model', {
    headers: {
      'x-client-remove-b': '1', 'X-Client-Remove-R': '1', 'x-both-remove': '1', 'x-client-keep': 'keep',
      'x-both': 'from-client', 'x-route-only': 'from-client', 'x-backend-only': 'from-client',
    },
  });
  assert.equal(r.status, 200, r.text);
  const q = H.requests[0];
  assert.equal(q.headers['x-backend-only'], 'b', 'backend-level set');
  assert.equal(q.headers['x-route-only'], 'r', 'route-level set');
  assert.equal(q.headers['x-both'], 'from-route', 'route-level set wins over backend-level');
  assert.equal(q.headers['x-shared-case'], 'route', 'names compared case-insensitively');
  for (const n of ['x-both', 'x-route-only', 'x-backend-only', 'x-shared-case']) assert.equal(headerCount(q, n), 1, `${n} sent once`);
  assert.equal(q.headers['x-client-remove-b'], undefined, 'backend-level remove');
  assert.equal(q.headers['x-client-remove-r'], undefined, 'route-level remove (any case)');
  assert.equal(q.headers['x-both-remove'], undefined);
  assert.equal(q.headers['x-client-keep'], 'keep', 'other client headers pass');
  assert.equal(q.headers.authorization, `Bearer ${KEY('h')}`);
  assert.ok(!JSON.stringify(q.rawHeaders).includes(CLIENT_KEY));
});

test('modelNameOverride: the upstream sees the override, every other byte as the SDK sent it', async () => {
  const client = gw.client();
  const out = await client.chat.completions.create({ model: 'ov-model', messages: [{ role: 'user', content: 'override me' }], max_tokens: 7 });
  assert.equal(out.choices[0].message.content, 'echo: override me');
  assert.equal(A.requests.length, 1);
  assertSameBytes(A.requests[0].body, client.sent[0].body.replace('"model":"ov-model"', '"model":"upstream-real-model"'));
});

test('x-ai-eg-* and pseudo headers are protected from header mutations', async (t) => {
  // Either the loader refuses such a mutation (with its position) or it is ignored at run time;
  // in no case does the upstream get it, and routing still follows the body's model.
  const mk = (port, hm) => joinDocs(
    gatewayDoc({ port }),
    routeDoc({ rules: [{ model: 'prot-model', backends: [{ name: 'svc-prot', headerMutation: hm }] }] }),
    backendDocs({ name: 'svc-prot', port: H.port }),
  );
  const cases = [
    { what: 'x-ai-eg-*', hm: { set: [['x-ai-eg-model', 'hacked-model'], ['x-ai-eg-extra', 'e']], remove: ['x-ai-eg-original-path'] } },
    { what: 'pseudo', hm: { set: [[':path', '/v1/hacked'], [':authority', 'evil.example']] } },
  ];
  for (const c of cases) {
    const file = path.join(dir, `prot-${c.what.replace(/\W/g, '')}.yaml`);
    const text = mk(8080, c.hm);
    fs.writeFileSync(file, text);
    const v = runAigw(['validate', file]);
    if (v.code !== 0) {
      const probs = problemLines(v.stdout + v.stderr, file);
      assert.ok(probs.length > 0 && probs.every((p) => /x-ai-eg|:path|:authority|header/i.test(p.message)),
        `${c.what}: refused, with positioned reasons:\n${v.stdout}${v.stderr}`);
      continue;
    }
    const g = await startGateway({ config: (x) => mk(x.port, c.hm), workers: 1 });
    try {
      H.reset();
      const r = await chat(g, 'prot-model', { content: c.what });
      assert.equal(r.status, 200, `${c.what}: ${r.text}`);
      const q = H.requests[0];
      assert.equal(q.path, '/v1/chat/completions', `${c.what}: path unchanged`);
      assert.equal(JSON.parse(q.body).model, 'prot-model', `${c.what}: model unchanged`);
      assert.notEqual(q.headers['x-ai-eg-model'], 'hacked-model');
      assert.equal(q.headers['x-ai-eg-extra'], undefined, `${c.what}: x-ai-eg-* never set by a mutation`);
      assert.notEqual(q.headers.host, 'evil.example');
      const l = (await g.settleLogs(), g.logs.at(-1));
      assert.equal(l.genai_model_name, 'prot-model');
    } finally {
      await g.close();
    }
  }
  void t;
});

test('/config_dump shows the BackendTrafficPolicy retry on its route only', async () => {
  const dump = JSON.parse(await (await fetchT(`${gw.adminURL}/config_dump`)).text());
  const fb = dump.rules.filter((r) => /fb-route$/.test(r.route));
  const plain = dump.rules.filter((r) => /plain-route$/.test(r.route));
  assert.equal(fb.length, 6);
  assert.equal(plain.length, 1);
  const slow = dump.rules.find((r) => /timeout-route$/.test(r.route));
  assert.equal(slow.retry.numRetries, 1);
  assert.equal(slow.retry.perRetryTimeoutMs, 300);
  assert.equal(dump.rules.find((r) => /eject-route$/.test(r.route)).retry.numRetries, 1);
  for (const r of fb) assert.equal(r.retry.numRetries, 3, `${r.route}: numRetries`);
  for (const r of plain) assert.equal(r.retry.numRetries, 0, 'no policy, no retry');
  for (const k of ['a', 'b', 'p0', 'h', 'r']) assert.ok(!JSON.stringify(dump).includes(KEY(k)), `key ${k} in /config_dump`);
});

shutdownTest(() => [gw]);
