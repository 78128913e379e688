// Process lifecycle: SIGTERM/SIGINT drain (stop accepting, in-flight streams finish, exit 0),
// the drain grace period, start-up failures, and the small CLI commands (help, version,
// healthcheck).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFakeOpenAI, sseOf } from './lib/fake_openai.mjs';
import {
  openaiEnv, runAigw, within, T, SANITIZED, freePort, tmpDir, fetchT, UPSTREAM_KEY, CLIENT_KEY, Gateway,
} from './lib/gateway.mjs';
import { post, assertNoSanitizerReport } from './lib/common.mjs';
import { REPO_ROOT } from './lib/testdata.mjs';

let fake;
const started = [];

before(async () => { fake = await startFakeOpenAI(); });
after(async () => {
  for (const g of started) await g.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

async function gateway(opts) {
  const g = new Gateway(opts);
  started.push(g);
  await g.start();
  return g;
}

function connectRefused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
  });
}

const chunk = (i) => ({ id: 'chatcmpl-d', object: 'chat.completion.chunk', created: 1731000000, model: 'gpt-e2e', choices: [{ index: 0, delta: { content: `d${i} ` }, finish_reason: null }] });

test('SIGTERM drains: new connections refused, the in-flight stream completes, exit 0', async () => {
  const gw = await gateway({ env: openaiEnv(fake), args: ['--drain-timeout', String(Math.ceil(T(10_000) / 1000))] });
  const events = Array.from({ length: 10 }, (_, i) => chunk(i));
  fake.enqueue({ sse: sseOf(events), delayMs: 150 });
  const client = gw.client();
  const s = await client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'x' }], stream: true });
  const it = s[Symbol.asyncIterator]();
  const first = await it.next();
  assert.equal(first.value.choices[0].delta.content, 'd0 ');

  const t0 = Date.now();
  gw.proc.kill('SIGTERM');
  // New connections are refused soon after the signal (the listener is closed).
  let refused = false;
  const deadline = Date.now() + T(2000);
  while (!refused && Date.now() < deadline) {
    refused = await connectRefused(gw.port);
    if (!refused) await sleep(25);
  }
  assert.ok(refused, 'new connections refused after SIGTERM');
  assert.ok(gw.alive, 'still running while the stream is in flight');

  let text = 'd0 ';
  for (;;) {
    const n = await it.next();
    if (n.done) break;
    text += n.value.choices[0]?.delta?.content ?? '';
  }
  assert.equal(text, events.map((e) => e.choices[0].delta.content).join(''), 'the in-flight stream completed after SIGTERM');
  const ex = await within(gw.exitPromise, T(5000), null);
  assert.ok(ex, 'exited after the last stream finished');
  assert.equal(ex.code, 0);
  assert.equal(ex.signal, null);
  assert.ok(Date.now() - t0 >= 1000, 'did not exit before the stream finished');
  assertNoSanitizerReport(gw);
});

test('SIGINT on an idle gateway: prompt exit 0', async () => {
  const gw = await gateway({ env: openaiEnv(fake) });
  const r = await post(gw, '/v1/chat/completions', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }));
  assert.equal(r.status, 200);
  await r.arrayBuffer();
  const t0 = Date.now();
  const ex = await gw.stop({ signal: 'SIGINT', timeoutMs: T(5000) });
  assert.equal(ex.code, 0);
  assert.ok(Date.now() - t0 < T(3000), 'an idle gateway exits promptly');
  assertNoSanitizerReport(gw);
});

test('SIGTERM with an idle keep-alive connection open: exits promptly with code 0', async () => {
  const gw = await gateway({ env: openaiEnv(fake), args: ['--drain-timeout', '10'] });
  const sock = net.connect(gw.port, '127.0.0.1');
  await new Promise((r) => sock.on('connect', r));
  sock.on('error', () => {});
  const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  await new Promise((r) => sock.once('data', r));
  const t0 = Date.now();
  const ex = await gw.stop({ timeoutMs: T(8000) });
  sock.destroy();
  assert.equal(ex.code, 0);
  assert.ok(Date.now() - t0 < T(3000), `idle keep-alive connections do not hold the drain (${Date.now() - t0} ms)`);
});

test('drain grace period: a stream that never ends is cut at --drain-timeout and the process exits', async () => {
  const gw = await gateway({ env: openaiEnv(fake), args: ['--drain-timeout', '1'] });
  fake.enqueue({ sse: sseOf([chunk(0), chunk(1)], { done: false }), hangAfterChunks: 2 });
  const res = await post(gw, '/v1/chat/completions', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true }), { timeoutMs: T(15_000) });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  await reader.read();
  const t0 = Date.now();
  gw.proc.kill('SIGTERM');
  const ex = await within(gw.exitPromise, T(6000), null);
  assert.ok(ex, 'the process exits after the grace period even with a stuck stream');
  const took = Date.now() - t0;
  assert.ok(took >= 800, `waited for the grace period (${took} ms)`);
  assert.equal(ex.signal, null, 'exited by itself, not killed');
  assert.equal(ex.code, 0, 'drain timeout is a normal shutdown');
  // The client's stream ends (it must not hang).
  const drained = (async () => { for (;;) { const r = await reader.read(); if (r.done) return true; } })().catch(() => true);
  assert.ok(await within(drained, T(3000), false), 'the client stream ended');
});

test('aigw --help, aigw run --help and aigw version', () => {
  for (const args of [['--help'], ['run', '--help']]) {
    const r = runAigw(args);
    assert.equal(r.code, 0, `aigw ${args.join(' ')} exits 0 (stderr: ${r.stderr})`);
    const out = r.stdout + r.stderr;
    assert.match(out, /run/);
    if (args[0] === 'run') {
      for (const flag of ['--port', '--admin-port', '--workers', '--max-request-body', '--drain-timeout']) assert.ok(out.includes(flag), `run --help lists ${flag}`);
    }
  }
  const v = runAigw(['version']);
  assert.equal(v.code, 0);
  const version = fs.readFileSync(path.join(REPO_ROOT, 'VERSION'), 'utf8').trim();
  assert.match(v.stdout, /^aigw \S+/);
  // The sanitizer build may be stamped differently by its build recipe; the release build must carry VERSION.
  if (!SANITIZED) assert.ok(v.stdout.includes(version), `version output "${v.stdout.trim()}" contains ${version}`);
});

test('unknown command and unknown flag fail with a message on stderr', () => {
  const r = runAigw(['frobnicate']);
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.length > 0);
  const f = runAigw(['run', '--no-such-flag']);
  assert.notEqual(f.code, 0);
  assert.ok(f.stderr.length > 0);
});

test('aigw healthcheck: 0 against a healthy gateway, non-zero when nothing listens', async () => {
  const gw = await gateway({ env: openaiEnv(fake) });
  const ok = runAigw(['healthcheck', '--admin-port', String(gw.adminPort)]);
  assert.equal(ok.code, 0, `healthcheck against a running gateway (stderr: ${ok.stderr})`);
  const port = await freePort();
  const bad = runAigw(['healthcheck', '--admin-port', String(port)]);
  assert.notEqual(bad.code, 0);
  await gw.stop();
});

test('invalid config file: non-zero exit with the problem on stderr; missing file likewise', async () => {
  const dir = tmpDir();
  try {
    const p = path.join(dir, 'bad.yaml');
    fs.writeFileSync(p, 'apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIGatewayRoute\nmetadata: {name: broken\nspec: [\n');
    const port = await freePort();
    const admin = await freePort();
    const r = runAigw(['run', p, '--port', String(port), '--admin-port', String(admin)], { timeoutMs: T(5000) });
    assert.notEqual(r.code, 0);
    assert.equal(r.signal, null, 'exits by itself, promptly');
    assert.ok(r.stderr.includes('bad.yaml'), `stderr names the file: ${r.stderr}`);
    const m = runAigw(['run', path.join(dir, 'missing.yaml'), '--port', String(port), '--admin-port', String(admin)], { timeoutMs: T(5000) });
    assert.notEqual(m.code, 0);
    assert.equal(m.signal, null);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('no environment at all: targets http://127.0.0.1:11434/v1 and says so on stderr', async () => {
  const gw = await gateway({ env: {} });
  assert.match(gw.stderr, /127\.0\.0\.1:11434/);
  await gw.stop();
});

test('the listener port is taken: start fails with a non-zero exit', async () => {
  const blocker = net.createServer();
  blocker.listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  try {
    const g = new Gateway({ env: openaiEnv(fake), port: blocker.address().port, waitReady: false });
    started.push(g);
    await g.start();
    const ex = await within(g.exitPromise, T(5000), null);
    assert.ok(ex, 'exits when it cannot listen');
    assert.notEqual(ex.code, 0);
  } finally {
    blocker.close();
  }
});

test('admin endpoints: /health 200, /metrics Prometheus text; keys never appear on stderr', async () => {
  const gw = await gateway({ env: openaiEnv(fake) });
  const h = await fetchT(`${gw.adminURL}/health`);
  assert.equal(h.status, 200);
  await h.arrayBuffer();
  const m = await fetchT(`${gw.adminURL}/metrics`);
  assert.equal(m.status, 200);
  assert.match(m.headers.get('content-type') || '', /text\/plain/);
  const text = await m.text();
  assert.ok(!text.includes(UPSTREAM_KEY));
  await gw.stop();
  assert.ok(!gw.stderr.includes(UPSTREAM_KEY) && !gw.stderr.includes(CLIENT_KEY));
});

