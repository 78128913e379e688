// The TLS listener: a Gateway listener with protocol HTTPS and a kubernetes.io/tls Secret whose
// certificate is made at test time with the openssl CLI (temp dir, never committed). The official
// openai SDK runs in a child Node process that trusts the test CA through NODE_EXTRA_CA_CERTS
// (non-streaming, streaming, /v1/models, keep-alive); without the CA it refuses. Plain HTTP on the
// TLS port is not served; the presented certificate is ours; /config_dump says TLS and never
// shows the key. A TLS upstream is trusted through BackendTLSPolicy (System store from
// SSL_CERT_FILE with hostname/SNI, and caCertificateRefs to a ConfigMap).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import https from 'node:https';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { startFakeOpenAI } from './lib/fake_openai.mjs';
import { startGateway, tmpDir, fetchT, T, CLIENT_KEY } from './lib/gateway.mjs';
import { shutdownTest } from './lib/common.mjs';
import { E2E_DIR } from './lib/testdata.mjs';
import { joinDocs, gatewayDoc, routeDoc, backendDocs, tlsSecretDoc, makeCerts } from './lib/resources.mjs';

let dir;
let listenerCerts; // CA + server cert for the gateway's listener
let upCerts;       // another CA + server cert for the TLS upstream
let fake;          // plain upstream
let fakeTLS;       // TLS upstream
let gw;            // HTTPS listener; routes to the plain and the TLS upstream (System store via SSL_CERT_FILE)
let gwCaRef;       // plain listener; TLS upstream trusted via BackendTLSPolicy caCertificateRefs

function tlsConfig(port) {
  return joinDocs(
    gatewayDoc({ port, https: { secret: 'tls-secret' } }),
    tlsSecretDoc({ name: 'tls-secret', certPem: listenerCerts.certPem, keyPem: listenerCerts.keyPem }),
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

/** One HTTPS request with node:https; resolves { status, body, cert } or rejects with the TLS error. */
function httpsGet(url, { ca = null, timeoutMs = T(5000) } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: ca ?? undefined, agent: false, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const cert = res.socket.getPeerCertificate();
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), cert }));
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

shutdownTest(() => [gw, gwCaRef]);

void path;
