// The TLS listener: a Gateway listener with protocol HTTPS and a kubernetes.io/tls Secret whose
// certificate is made at test time with the openssl CLI (temp dir, never committed). The official
// openai SDK runs in a child Node process that trusts the test CA through NODE_EXTRA_CA_CERTS
// (non-streaming, streaming, /v1/models, keep-alive); without the CA it refuses. Plain HTTP on the
// TLS port is not served; the presented certificate is ours; /config_dump says TLS and never
// shows the key. A TLS upstream is trusted through BackendTLSPolicy (System store from
// SSL_CERT_FILE with hostname/SNI, and caCertificateRefs to a ConfigMap). Listener certificate
// problems are refused with positions (type, mismatched key, not PEM, missing, cross-namespace
// without ReferenceGrant); --tls-cert/--tls-key; a reload swaps the certificate for new
// connections within a second while open ones keep working, and a bad one is refused.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import https from 'node:https';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { startFakeOpenAI } from './lib/fake_openai.mjs';
import { Gateway, startGateway, runAigw, tmpDir, fetchT, within, T, CLIENT_KEY } from './lib/gateway.mjs';
import { parseProm, total } from './lib/prom.mjs';
import { setTimeout as sleep } from 'node:timers/promises';
import { shutdownTest } from './lib/common.mjs';
import { E2E_DIR } from './lib/testdata.mjs';
import { joinDocs, gatewayDoc, routeDoc, backendDocs, tlsSecretDoc, makeCerts, referenceGrantDoc, lineOf, problemLines, writeAtomic } from './lib/resources.mjs';

let dir;
let listenerCerts; // CA + server cert for the gateway's listener
let upCerts;       // another CA + server cert for the TLS upstream
let fake;          // plain upstream
let fakeTLS;       // TLS upstream
let gw;            // HTTPS listener; routes to the plain and the TLS upstream (System store via SSL_CERT_FILE)
let gwCaRef;       // plain listener; TLS upstream trusted via BackendTLSPolicy caCertificateRefs

function tlsConfig(port, certPem = listenerCerts.certPem, keyPem = listenerCerts.keyPem) {
  return joinDocs(
    gatewayDoc({ port, https: { secret: 'tls-secret' } }),
    tlsSecretDoc({ name: 'tls-secret', certPem, keyPem }),
    routeDoc({
      rules: [
        { model: 'm-tls', backends: [{ name: 'svc-plain' }] },
        { model: 'm-up-tls', backends: [{ name: 'svc-tls' }] },
      ],
    }),
    backendDocs({ name: 'svc-plain', port: fake.port, key: 'sk-tls-listener-plain-0001' }),
    backendDocs({ name: 'svc-tls', host: 'localhost', port: fakeTLS.port, key: 'sk-tls-listener-up-0002', tls: { hostname: 'localhost' } }),
  );
}

function caRefConfig(port) {
  return joinDocs(
    gatewayDoc({ port }),
    routeDoc({ rules: [{ model: 'm-up-ca', backends: [{ name: 'svc-ca' }] }] }),
    backendDocs({
      name: 'svc-ca', host: 'localhost', port: fakeTLS.port, key: 'sk-tls-caref-0003',
      tls: { hostname: 'localhost', caConfigMap: { name: 'upstream-ca', pem: upCerts.caPem } },
    }),
  );
}

/** Runs the official SDK in a child Node process (async: this process serves the fakes). */
function sdkChild({ baseURL, model, trustCA = true, timeoutMs = T(20_000) }) {
  const script = `
import OpenAI from 'openai';
const c = new OpenAI({ apiKey: process.env.E2E_KEY, baseURL: process.env.E2E_BASE, maxRetries: 0, timeout: ${T(10_000)} });
const out = {};
try {
  const r = await c.chat.completions.create({ model: process.env.E2E_MODEL, messages: [{ role: 'user', content: 'over tls' }] });
  out.chat = r.choices[0].message.content;
  const s = await c.chat.completions.create({ model: process.env.E2E_MODEL, messages: [{ role: 'user', content: 'streamed' }], stream: true, stream_options: { include_usage: true } });
  let text = ''; let usage = null;
  for await (const ch of s) { text += ch.choices[0]?.delta?.content ?? ''; if (ch.usage) usage = ch.usage; }
  out.stream = text; out.usage = usage;
  out.models = [];
  for await (const m of c.models.list()) out.models.push(m.id);
  for (let i = 0; i < 3; i++) {
    const r2 = await c.chat.completions.create({ model: process.env.E2E_MODEL, messages: [{ role: 'user', content: 'again' + i }] });
    out['again' + i] = r2.choices[0].message.content;
  }
} catch (e) {
  out.error = { name: e.constructor.name, message: e.message, cause: String(e.cause?.cause?.code || e.cause?.cause?.message || e.cause?.code || e.cause?.message || e.cause || '') };
}
process.stdout.write(JSON.stringify(out));
`;
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, E2E_KEY: CLIENT_KEY, E2E_BASE: baseURL, E2E_MODEL: model };
  if (trustCA) env.NODE_EXTRA_CA_CERTS = listenerCerts.caPath;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: E2E_DIR, env, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && !stdout) return reject(new Error(`SDK child failed: ${err.message}\n${stderr}`));
      try { resolve(JSON.parse(stdout)); } catch (e) { reject(new Error(`SDK child output not JSON: ${stdout}\n${stderr}`)); }
    });
  });
}

/** One HTTPS request with node:https; resolves { status, body, cert, reused } or rejects with the TLS error. */
function httpsGet(url, { ca = null, agent = false, timeoutMs = T(5000) } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: ca ?? undefined, agent, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const cert = res.socket.getPeerCertificate();
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), cert, reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

before(async () => {
  dir = tmpDir('aigw-e2e-tlslistener-');
  listenerCerts = makeCerts(dir);
  upCerts = makeCerts(dir, { prefix: 'up-' });
  fake = await startFakeOpenAI();
  fakeTLS = await startFakeOpenAI({ tls: { key: upCerts.keyPem, cert: upCerts.certPem } });
});
after(async () => {
  for (const g of [gw, gwCaRef]) await g?.close();
  for (const f of [fake, fakeTLS]) await f?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => { fake?.reset(); fakeTLS?.reset(); });

test('gateway starts with an HTTPS listener from a kubernetes.io/tls Secret', async () => {
  gw = await startGateway({ config: (g) => tlsConfig(g.port), env: { SSL_CERT_FILE: upCerts.caPath } });
  const dump = await (await fetchT(`${gw.adminURL}/config_dump`)).text();
  assert.equal(JSON.parse(dump).listenTLS, true, 'listenTLS in /config_dump');
  const keyBody = listenerCerts.keyPem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  assert.ok(!dump.includes('PRIVATE KEY') && !dump.includes(keyBody.slice(0, 40)), 'the private key is not in /config_dump');
  assert.ok(!dump.includes(Buffer.from(listenerCerts.keyPem).toString('base64').slice(0, 40)), 'nor its base64');
  assert.ok(!gw.stderr.includes(keyBody.slice(0, 40)), 'the private key is not on stderr');
  // The listener speaks TLS (a plaintext listener fails the handshake with "wrong version number").
  const r = await httpsGet(`https://127.0.0.1:${gw.port}/health`, { ca: listenerCerts.caPem }).catch((e) => ({ error: e.message }));
  assert.equal(r.error, undefined, `TLS handshake with the listener: ${r.error}`);
  assert.ok(r.status > 0);
});

test('the official openai SDK (child process trusting the test CA) talks to the TLS listener', async (t) => {
  assert.ok(gw, 'the TLS gateway did not start (see the first test)');
  const out = await sdkChild({ baseURL: `https://localhost:${gw.port}/v1`, model: 'm-tls' });
  assert.equal(out.error, undefined, JSON.stringify(out.error));
  assert.equal(out.chat, 'echo: over tls');
  assert.equal(out.stream, 'echo: streamed');
  assert.deepEqual(out.usage, { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
  assert.deepEqual(out.models.sort(), ['m-tls', 'm-up-tls']);
  for (let i = 0; i < 3; i++) assert.equal(out[`again${i}`], `echo: again${i}`);
  assert.equal(fake.requests.length, 5);
  for (const q of fake.requests) assert.equal(q.headers.authorization, 'Bearer sk-tls-listener-plain-0001');
  // By IP address too (the certificate has IP:127.0.0.1).
  const byIp = await sdkChild({ baseURL: `https://127.0.0.1:${gw.port}/v1`, model: 'm-tls' });
  assert.equal(byIp.error, undefined, JSON.stringify(byIp.error));
  assert.equal(byIp.chat, 'echo: over tls');
});

test('without the CA the SDK refuses the certificate; the presented certificate is ours', async (t) => {
  assert.ok(gw, 'the TLS gateway did not start (see the first test)');
  const out = await sdkChild({ baseURL: `https://localhost:${gw.port}/v1`, model: 'm-tls', trustCA: false });
  assert.ok(out.error, `expected a connection error, got ${JSON.stringify(out)}`);
  assert.match(out.error.name + out.error.cause + out.error.message, /Connection|CERT|certificate|verify/i);
  await assert.rejects(httpsGet(`https://127.0.0.1:${gw.port}/v1/models`), /certificate|UNABLE_TO_VERIFY|SELF_SIGNED/i);
  const r = await httpsGet(`https://127.0.0.1:${gw.port}/v1/models`, { ca: listenerCerts.caPem });
  assert.equal(r.status, 200, r.body);
  const want = new crypto.X509Certificate(listenerCerts.certPem).fingerprint256;
  assert.equal(r.cert.fingerprint256, want, 'the Secret\'s certificate is presented');
});

test('plain HTTP on the TLS port is not served', async (t) => {
  assert.ok(gw, 'the TLS gateway did not start (see the first test)');
  let status = null;
  try {
    const res = await fetchT(`http://127.0.0.1:${gw.port}/v1/models`, {}, T(3000));
    status = res.status;
    await res.arrayBuffer();
  } catch { status = 'error'; }
  assert.notEqual(status, 200, 'a plaintext request must not be answered 200 on the HTTPS listener');
  // And the gateway still serves TLS afterwards.
  const r = await httpsGet(`https://127.0.0.1:${gw.port}/v1/models`, { ca: listenerCerts.caPem });
  assert.equal(r.status, 200);
  assert.ok(gw.alive);
});

test('TLS listener to a TLS upstream trusted through BackendTLSPolicy (System store, hostname as SNI)', async (t) => {
  assert.ok(gw, 'the TLS gateway did not start (see the first test)');
  const out = await sdkChild({ baseURL: `https://localhost:${gw.port}/v1`, model: 'm-up-tls' });
  assert.equal(out.error, undefined, JSON.stringify(out.error));
  assert.equal(out.chat, 'echo: over tls');
  assert.equal(out.stream, 'echo: streamed');
  assert.ok(fakeTLS.requests.length >= 2);
  assert.equal(fakeTLS.requests[0].servername, 'localhost');
  assert.equal(fakeTLS.requests[0].headers.authorization, 'Bearer sk-tls-listener-up-0002');
});

test('TLS upstream trusted through BackendTLSPolicy caCertificateRefs (ConfigMap ca.crt), no system trust needed', async () => {
  gwCaRef = await startGateway({ config: (g) => caRefConfig(g.port), env: { SSL_CERT_FILE: listenerCerts.caPath } });
  const res = await fetchT(`${gwCaRef.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` },
    body: JSON.stringify({ model: 'm-up-ca', messages: [{ role: 'user', content: 'ca ref' }] }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.equal(JSON.parse(text).choices[0].message.content, 'echo: ca ref');
  assert.equal(fakeTLS.requests[0].servername, 'localhost');
  assert.equal(fakeTLS.requests[0].headers.authorization, 'Bearer sk-tls-caref-0003');
});

test('aigw validate: listener certificate problems with positions; a cross-namespace Secret needs a ReferenceGrant', () => {
  const other = makeCerts(dir, { prefix: 'other-' });
  const cases = [
    { what: 'Opaque Secret', docs: [tlsSecretDoc({ name: 'tls-secret', certPem: listenerCerts.certPem, keyPem: listenerCerts.keyPem, type: 'Opaque' })], re: /kubernetes\.io\/tls/ },
    { what: 'key of another certificate', docs: [tlsSecretDoc({ name: 'tls-secret', certPem: listenerCerts.certPem, keyPem: other.keyPem })], re: /match|key/i },
    { what: 'not PEM', docs: [tlsSecretDoc({ name: 'tls-secret', certPem: 'garbage', keyPem: listenerCerts.keyPem })], re: /PEM|certificate/i },
    { what: 'missing Secret', docs: [], re: /not found/ },
    { what: 'Secret in another namespace, no grant', ns: 'certs', docs: [tlsSecretDoc({ name: 'tls-secret', ns: 'certs', certPem: listenerCerts.certPem, keyPem: listenerCerts.keyPem })], re: /ReferenceGrant/ },
  ];
  for (const c of cases) {
    const text = joinDocs(gatewayDoc({ port: 8443, https: { secret: 'tls-secret', secretNs: c.ns } }), ...c.docs,
      routeDoc({ rules: [{ model: 'm', backends: [{ name: 'svc-plain' }] }] }), backendDocs({ name: 'svc-plain', port: 8081 }));
    const file = path.join(dir, `cert-${c.what.replace(/\W+/g, '-')}.yaml`);
    fs.writeFileSync(file, text);
    const r = runAigw(['validate', file]);
    const out = r.stdout + r.stderr;
    assert.notEqual(r.code, 0, `${c.what}: must be invalid\n${out}`);
    const p = problemLines(out, file).find((x) => x.kind === 'Gateway' && c.re.test(x.message));
    assert.ok(p, `${c.what}: positioned Gateway problem matching ${c.re}\n${out}`);
    const refs = lineOf(text, 'certificateRefs:');
    assert.ok(p.line > refs && p.line <= refs + 4, `${c.what}: problem at line ${p.line}, certificateRefs at ${refs}`);
    assert.ok(!out.includes(listenerCerts.keyPem.split('\n')[1]), `${c.what}: key material printed`);
  }
  // With a ReferenceGrant from Gateways of default to Secrets in certs: valid.
  const text = joinDocs(gatewayDoc({ port: 8443, https: { secret: 'tls-secret', secretNs: 'certs' } }),
    tlsSecretDoc({ name: 'tls-secret', ns: 'certs', certPem: listenerCerts.certPem, keyPem: listenerCerts.keyPem }),
    referenceGrantDoc({ name: 'gw-certs', ns: 'certs', fromNs: 'default', fromGroup: 'gateway.networking.k8s.io', fromKind: 'Gateway', toGroup: '', toKind: 'Secret' }),
    routeDoc({ rules: [{ model: 'm', backends: [{ name: 'svc-plain' }] }] }), backendDocs({ name: 'svc-plain', port: 8081 }));
  const file = path.join(dir, 'cert-granted.yaml');
  fs.writeFileSync(file, text);
  const r = runAigw(['validate', file]);
  assert.equal(r.code, 0, `granted cross-namespace Secret:\n${r.stdout}${r.stderr}`);
});

test('aigw run refuses an unusable listener certificate', async () => {
  const other = makeCerts(dir, { prefix: 'bad-' });
  const g = new Gateway({ config: (x) => tlsConfig(x.port, listenerCerts.certPem, other.keyPem), waitReady: false });
  try {
    await g.start();
    const ex = await within(g.exitPromise, T(10_000), null);
    assert.ok(ex, 'aigw run must exit');
    assert.notEqual(ex.code, 0);
    assert.match(g.stderr, /tls|certificate|key/i);
  } finally {
    await g.close();
  }
});

test('--tls-cert / --tls-key serve HTTPS with a plain HTTP Gateway listener', async () => {
  const files = makeCerts(dir, { prefix: 'flag-' });
  const g = await startGateway({
    config: (x) => joinDocs(gatewayDoc({ port: x.port }), routeDoc({ rules: [{ model: 'm-tls', backends: [{ name: 'svc-plain' }] }] }),
      backendDocs({ name: 'svc-plain', port: fake.port })),
    args: ['--tls-cert', files.certPath, '--tls-key', files.keyPath],
  });
  try {
    const r = await httpsGet(`https://127.0.0.1:${g.port}/v1/models`, { ca: files.caPem });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.cert.fingerprint256, new crypto.X509Certificate(files.certPem).fingerprint256);
  } finally {
    await g.close();
  }
  const half = runAigw(['run', '--port', '0', '--admin-port', '0', '--tls-cert', files.certPath], { timeoutMs: T(5000) });
  assert.ok(half.code !== null && half.code !== 0, `--tls-cert without --tls-key must exit non-zero at once (${JSON.stringify({ code: half.code, signal: half.signal })})`);
  assert.match(half.stderr, /tls-key/);
});

test('reload replaces the listener certificate for new connections within a second; open connections keep working; a bad one is refused', async () => {
  assert.ok(gw, 'the TLS gateway did not start (see the first test)');
  const rot = makeCerts(dir, { prefix: 'rot-' });
  const bothCAs = [listenerCerts.caPem, rot.caPem];
  const oldFp = new crypto.X509Certificate(listenerCerts.certPem).fingerprint256;
  const newFp = new crypto.X509Certificate(rot.certPem).fingerprint256;
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: bothCAs });
  try {
    const before = await httpsGet(`https://127.0.0.1:${gw.port}/v1/models`, { agent });
    assert.equal(before.cert.fingerprint256, oldFp);
    const m0 = parseProm(await gw.metricsText());
    const t0 = performance.now();
    writeAtomic(gw.configPath, tlsConfig(gw.port, rot.certPem, rot.keyPem));
    let ms = null;
    while (performance.now() - t0 < T(3000)) {
      const r = await httpsGet(`https://127.0.0.1:${gw.port}/v1/models`, { ca: bothCAs });
      if (r.cert.fingerprint256 === newFp) { ms = performance.now() - t0; break; }
      await sleep(10);
    }
    assert.ok(ms !== null && ms <= T(1000), `new certificate presented after ${ms} ms`);
    const kept = await httpsGet(`https://127.0.0.1:${gw.port}/v1/models`, { agent });
    assert.equal(kept.status, 200, 'an open connection keeps working across the swap');
    if (kept.reused) assert.equal(kept.cert.fingerprint256, oldFp, 'the open connection keeps its certificate');

    // An unusable certificate: counted as a failed reload, the current one stays.
    const f0 = total(parseProm(await gw.metricsText()), 'aigw_config_reload_failures_total');
    writeAtomic(gw.configPath, tlsConfig(gw.port, rot.certPem, listenerCerts.keyPem));
    const deadline = Date.now() + T(3000);
    let f = f0;
    while (f === f0 && Date.now() < deadline) {
      await sleep(10);
      f = total(parseProm(await gw.metricsText()), 'aigw_config_reload_failures_total');
    }
    assert.equal(f, f0 + 1, 'a mismatched key is a failed reload');
    const after = await httpsGet(`https://127.0.0.1:${gw.port}/v1/models`, { ca: bothCAs });
    assert.equal(after.cert.fingerprint256, newFp, 'still the last good certificate');
    assert.equal(total(parseProm(await gw.metricsText()), 'aigw_config_reloads_total'), total(m0, 'aigw_config_reloads_total') + 1);
    assert.ok(!gw.stderr.includes(rot.keyPem.split('\n')[1]), 'key material on stderr');
  } finally {
    agent.destroy();
  }
});

shutdownTest(() => [gw, gwCaRef]);

