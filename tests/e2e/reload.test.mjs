// Hot reload under load: a bounded Node request loop runs while the configuration file changes 20
// times (10 valid generations, 10 invalid files of different kinds; atomic renames and in-place
// writes). Zero failed requests; each valid generation's new route answers within a second of the
// write (measured), the previous generation's route is gone, and a fresh request sees the new
// generation's backend and headers; an invalid file changes nothing and is counted. Then the
// counters and /config_dump agree, and SIGHUP reloads too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFakeOpenAI } from './lib/fake_openai.mjs';
import { startGateway, fetchT, T, SANITIZED } from './lib/gateway.mjs';
import { shutdownTest } from './lib/common.mjs';
import { parseProm, total } from './lib/prom.mjs';
import { joinDocs, gatewayDoc, routeDoc, backendDocs, chat, writeAtomic } from './lib/resources.mjs';

const CHANGES = 20;
const EFFECTIVE_MS = T(1000);
const LOOP_CONCURRENCY = 8;
const LOOP_MAX_REQUESTS = 50_000;

let A;
let B;
let gw;

/** Generation k: stable-model alternates between A and B (with an x-generation header); new-model-k exists only in k. */
function config(port, k, keyB = 'sk-reload-b') {
  return joinDocs(
    gatewayDoc({ port }),
    routeDoc({
      rules: [
        { model: 'stable-model', backends: [{ name: k % 2 ? 'svc-b' : 'svc-a', headerMutation: { set: [['x-generation', String(k)]] } }] },
        { model: `new-model-${k}`, backends: [{ name: 'svc-b' }] },
      ],
    }),
    backendDocs({ name: 'svc-a', port: A.port, key: 'sk-reload-a' }),
    backendDocs({ name: 'svc-b', port: B.port, key: keyB }),
  );
}

function invalidConfig(port, k, variant) {
  const good = config(port, k);
  switch (variant % 5) {
    case 0: return good + 'apiVersion: v1\nkind: Secret\nmetadata: {name: [unclosed\n';           // YAML syntax error
    case 1: return good.replace('name: svc-b\n', 'name: svc-missing\n');                        // unknown AIServiceBackend
    case 2: return good.replace(`port: ${B.port}`, 'port: 0');                                    // bad port
    case 3: return good + '---\n' + backendDocs({ name: 'svc-a', port: A.port })[1] + '\n';       // defined twice
    default: return good.replace('kind: AIGatewayRoute\nmetadata:\n  name: aigw-e2e-route', 'kind: AIGatewayRoute\nmetadata:\n  nameX: aigw-e2e-route'); // no name
  }
}

async function metrics() {
  const s = parseProm(await gw.metricsText());
  return {
    reloads: total(s, 'aigw_config_reloads_total'),
    failures: total(s, 'aigw_config_reload_failures_total'),
    generation: total(s, 'aigw_config_generation'),
  };
}

async function dumpGeneration() {
  const r = await fetchT(`${gw.adminURL}/config_dump`);
  return (await r.json()).generation;
}

before(async () => {
  A = await startFakeOpenAI();
  B = await startFakeOpenAI();
  // A little upstream latency keeps requests in flight across every swap.
  // Streams take ~150 ms (40 ms between events), so some are always in flight during a swap.
  const spec = (rec) => (rec.body.includes('"stream":true') ? { delayMs: 40 } : { initialDelayMs: 3 });
  A.defaultSpec = spec;
  B.defaultSpec = spec;
  gw = await startGateway({ config: (g) => config(g.port, 0), workers: 2 });
});
after(async () => {
  await gw?.close();
  for (const f of [A, B]) await f?.close();
});

test(`reload under load: ${CHANGES} file changes (valid and invalid), zero failed requests, new routes within ${EFFECTIVE_MS} ms`, async (t) => {
  const before0 = await metrics();
  assert.equal(before0.generation, 1);
  // The load loop: bounded in count and stopped by the test; every failure is kept.
  let stop = false;
  let sent = 0;
  const failures = [];
  const loop = Array.from({ length: LOOP_CONCURRENCY }, async (_, w) => {
    while (!stop && sent < LOOP_MAX_REQUESTS) {
      const i = sent++;
      try {
        const r = await chat(gw, 'stable-model', { content: `load-${w}-${i}`, timeoutMs: T(5000) });
        if (r.status !== 200) failures.push(`#${i}: ${r.status} ${r.text.slice(0, 200)}`);
      } catch (e) {
        failures.push(`#${i}: ${e.message}`);
      }
    }
  });

  // Two more workers keep streams open across the swaps; each must arrive whole.
  let streams = 0;
  const streamLoop = Array.from({ length: 2 }, async (_, w) => {
    while (!stop && sent < LOOP_MAX_REQUESTS) {
      const i = sent++;
      try {
        const res = await fetchT(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer sk-client' },
          body: JSON.stringify({ model: 'stable-model', stream: true, messages: [{ role: 'user', content: `stream-${w}-${i}` }] }),
        }, T(5000));
        const text = await res.text();
        if (res.status !== 200 || !text.includes(`"content":"echo: stream-${w}-${i}"`) || !text.trimEnd().endsWith('data: [DONE]')) {
          failures.push(`stream #${i}: ${res.status} ${text.slice(-200)}`);
        }
        streams++;
      } catch (e) {
        failures.push(`stream #${i}: ${e.message}`);
      }
    }
  });

  const latencies = [];
  let k = 0;
  let valid = 0;
  let invalid = 0;
  try {
    await sleep(100);
    for (let change = 1; change <= CHANGES; change++) {
      if (change % 2 === 1) {
        // A valid generation: written atomically or in place, alternately.
        k++;
        valid++;
        const text = config(gw.port, k);
        const t0 = performance.now();
        if (k % 2) writeAtomic(gw.configPath, text); else fs.writeFileSync(gw.configPath, text);
        let ok = null;
        while (performance.now() - t0 < EFFECTIVE_MS + T(2000)) {
          const r = await chat(gw, `new-model-${k}`, { content: `probe-new-${k}`, timeoutMs: T(2000) });
          if (r.status === 200) { ok = performance.now() - t0; break; }
          assert.equal(r.status, 404, `new-model-${k} before the reload: ${r.text}`);
          await sleep(5);
        }
        assert.ok(ok !== null, `generation ${k}: new-model-${k} never answered`);
        latencies.push(ok);
        assert.ok(ok <= EFFECTIVE_MS, `generation ${k}: new route effective after ${ok.toFixed(0)} ms (limit ${EFFECTIVE_MS})`);
        // The whole generation is in effect: the previous route is gone, stable-model moved.
        const old = await chat(gw, `new-model-${k - 1}`);
        assert.equal(old.status, 404, `new-model-${k - 1} must be gone in generation ${k}`);
        const probe = `probe-stable-${k}`;
        const s = await chat(gw, 'stable-model', { content: probe });
        assert.equal(s.status, 200);
        const fake = k % 2 ? B : A;
        const rec = fake.requests.find((q) => q.body.includes(probe));
        assert.ok(rec, `generation ${k}: stable-model should go to ${k % 2 ? 'B' : 'A'}`);
        assert.equal(rec.headers['x-generation'], String(k), 'the new generation\'s header mutation');
        assert.equal(await dumpGeneration(), 1 + valid);
      } else {
        // An invalid file: counted as a failed reload, the running generation unchanged.
        invalid++;
        const m0 = await metrics();
        const text = invalidConfig(gw.port, k, invalid);
        if (invalid % 2) fs.writeFileSync(gw.configPath, text); else writeAtomic(gw.configPath, text);
        const deadline = Date.now() + T(3000);
        let m = m0;
        while (m.failures === m0.failures && Date.now() < deadline) {
          await sleep(10);
          m = await metrics();
        }
        assert.equal(m.failures, m0.failures + 1, `invalid change #${invalid} (variant ${invalid % 5}) counted once as a failed reload`);
        assert.equal(m.reloads, m0.reloads, 'no successful reload from an invalid file');
        assert.equal(m.generation, 1 + valid);
        const still = await chat(gw, `new-model-${k}`);
        assert.equal(still.status, 200, `generation ${k} still serves after an invalid file: ${still.text}`);
        assert.equal(await dumpGeneration(), 1 + valid);
      }
    }
  } finally {
    stop = true;
    await Promise.all([...loop, ...streamLoop]);
  }
  t.diagnostic(`load loop: ${sent} requests (${streams} streams); route effective after (ms): ${latencies.map((x) => x.toFixed(0)).join(', ')}; max ${Math.max(...latencies).toFixed(0)}`);
  assert.equal(failures.length, 0, `failed requests during reloads (${failures.length}/${sent}): ${failures.slice(0, 5).join(' | ')}`);
  assert.ok(sent >= (SANITIZED ? 50 : 200), `the load loop ran (${sent} requests)`);
  assert.ok(streams >= 5, `streams ran across the reloads (${streams})`);
  const m = await metrics();
  assert.equal(m.reloads, before0.reloads + valid, 'aigw_config_reloads_total counts each valid change once');
  assert.equal(m.failures, before0.failures + invalid, 'aigw_config_reload_failures_total counts each invalid change once');
  assert.equal(m.generation, 1 + valid, 'aigw_config_generation');
  assert.equal(await dumpGeneration(), 1 + valid);
  assert.match(gw.stderr, /invalid/i, 'a failed reload is logged');
});

async function waitMetric(pred, what) {
  const deadline = Date.now() + T(3000);
  let m = await metrics();
  while (!pred(m) && Date.now() < deadline) {
    await sleep(10);
    m = await metrics();
  }
  assert.ok(pred(m), `${what}: ${JSON.stringify(m)}`);
  return m;
}

test('SIGHUP reloads the file: an invalid one is counted and kept out, a valid one is a new generation', async () => {
  // The load test ended on an invalid file.
  const m0 = await metrics();
  const g0 = await dumpGeneration();
  process.kill(gw.pid, 'SIGHUP');
  await waitMetric((m) => m.failures === m0.failures + 1, 'SIGHUP on an invalid file counts a failed reload');
  assert.equal(await dumpGeneration(), g0);

  // A valid file (the watcher reloads it), then SIGHUP with no change reloads it again.
  fs.writeFileSync(gw.configPath, config(gw.port, 100));
  const m1 = await waitMetric((m) => m.reloads === m0.reloads + 1, 'the valid file is reloaded');
  assert.equal(await dumpGeneration(), g0 + 1);
  process.kill(gw.pid, 'SIGHUP');
  const m2 = await waitMetric((m) => m.reloads === m1.reloads + 1, 'SIGHUP reloads');
  assert.equal(m2.failures, m1.failures);
  assert.equal(await dumpGeneration(), g0 + 2);
  assert.equal(m2.generation, g0 + 2);
  const r = await chat(gw, 'new-model-100');
  assert.equal(r.status, 200, r.text);
  assert.ok(gw.alive);
});

test('a rotated API key in the Secret is used within a second of the write', async () => {
  B.reset();
  B.defaultSpec = null;
  const t0 = performance.now();
  writeAtomic(gw.configPath, config(gw.port, 101, 'sk-reload-b-rotated'));
  let ms = null;
  while (performance.now() - t0 < EFFECTIVE_MS + T(2000)) {
    const r = await chat(gw, 'new-model-101', { timeoutMs: T(2000) });
    if (r.status === 200 && B.last()?.headers.authorization === 'Bearer sk-reload-b-rotated') { ms = performance.now() - t0; break; }
    await sleep(5);
  }
  assert.ok(ms !== null && ms <= EFFECTIVE_MS, `rotated key effective after ${ms} ms`);
  const text = await (await fetchT(`${gw.adminURL}/config_dump`)).text();
  assert.ok(!text.includes('sk-reload-b-rotated'));
});

test('/config_dump never shows the API keys after reloads', async () => {
  const text = await (await fetchT(`${gw.adminURL}/config_dump`)).text();
  assert.ok(!text.includes('sk-reload-a') && !text.includes('sk-reload-b'), text);
  assert.ok(!gw.stderr.includes('sk-reload-a') && !gw.stderr.includes('sk-reload-b'), 'key on stderr (reload error output)');
  assert.ok(!gw.logs.some((l) => JSON.stringify(l).includes('sk-reload-')), 'key in the access log');
});

shutdownTest(() => [gw]);
