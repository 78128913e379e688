// A TLS upstream: a CA and a server certificate are made at test time with the openssl CLI into a
// temp dir (never committed); the gateway trusts the CA through SSL_CERT_FILE. Covers auto-config
// with an https base URL, streaming over TLS, an untrusted CA and BackendTLSPolicy hostname (SNI
// and verification).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startFakeOpenAI, splitSSE } from './lib/fake_openai.mjs';
import { startGateway, yamlConfig, tmpDir, UPSTREAM_KEY } from './lib/gateway.mjs';
import { assertUpstreamRequest, assertSameBytes, assertErrorResponse, post, shutdownTest } from './lib/common.mjs';
import { fixture, fixtureJSON } from './lib/testdata.mjs';

let dir;
let fake;
let gw;          // OPENAI_BASE_URL=https://127.0.0.1:<port>/v1, CA trusted
let gwUntrusted; // same, but trusting another CA
let gwSni;       // YAML: BackendTLSPolicy hostname localhost
let gwWrongName; // YAML: BackendTLSPolicy hostname not in the certificate

function openssl(...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

function makeCA(name) {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=aigw e2e ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}

before(async () => {
  dir = tmpDir('aigw-e2e-tls-');
  makeCA('ca');
  makeCA('other-ca');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(path.join(dir, 'ext.cnf'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
  const read = (f) => fs.readFileSync(path.join(dir, f));
  fake = await startFakeOpenAI({ tls: { key: read('server.key'), cert: read('server.pem') } });
  const caEnv = { SSL_CERT_FILE: path.join(dir, 'ca.pem') };
  const httpsEnv = { OPENAI_API_KEY: UPSTREAM_KEY, OPENAI_BASE_URL: `https://127.0.0.1:${fake.port}/v1` };
  gw = await startGateway({ env: { ...httpsEnv, ...caEnv } });
  gwUntrusted = await startGateway({ env: { ...httpsEnv, SSL_CERT_FILE: path.join(dir, 'other-ca.pem') } });
  gwSni = await startGateway({
    env: caEnv,
    config: (g) => yamlConfig({ port: g.port, routes: [{ model: 'gpt-tls', backends: [{ name: 'tls-fake', port: fake.port, key: 'sk-yaml-tls', tls: { hostname: 'localhost' } }] }] }),
  });
  gwWrongName = await startGateway({
    env: caEnv,
    config: (g) => yamlConfig({ port: g.port, routes: [{ model: 'gpt-tls', backends: [{ name: 'tls-fake', port: fake.port, key: 'sk-yaml-tls', tls: { hostname: 'wrong.example.com' } }] }] }),
  });
});
after(async () => {
  for (const g of [gw, gwUntrusted, gwSni, gwWrongName]) await g?.close();
  await fake?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => fake.reset());

test('chat over a TLS upstream (https OPENAI_BASE_URL, CA from SSL_CERT_FILE)', async () => {
  const client = gw.client();
  fake.enqueue({ body: fixture('chat.json') });
  const r = await client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'over tls' }] });
  assert.deepEqual(JSON.parse(JSON.stringify(r)), fixtureJSON('chat.json'));
  assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: client.sent[0].body });
});

test('streaming over TLS: bytes identical', async () => {
  const client = gw.client();
  const sse = fixture('chat_stream.sse');
  fake.enqueue({ chunks: splitSSE(sse), delayMs: 5 });
  const res = await client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } }).asResponse();
  assertSameBytes(Buffer.from(await res.arrayBuffer()), sse);
  assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: client.sent[0].body });
});

test('several requests in a row over TLS all succeed (connection reuse or not)', async () => {
  const client = gw.client();
  for (let i = 0; i < 5; i++) {
    const r = await client.chat.completions.create({ model: 'gpt-e2e', messages: [{ role: 'user', content: `n${i}` }] });
    assert.equal(r.choices[0].message.content, `echo: n${i}`);
  }
  assert.equal(fake.requests.length, 5);
});

test('untrusted upstream certificate -> 502 JSON error, nothing sent', async () => {
  const res = await post(gwUntrusted, '/v1/chat/completions', JSON.stringify({ model: 'gpt-e2e', messages: [{ role: 'user', content: 'x' }] }));
  await assertErrorResponse(res, 502, 'untrusted certificate');
  assert.equal(fake.requests.length, 0, 'no request on an unverified connection');
});

test('BackendTLSPolicy hostname: SNI sent and certificate verified against it', async () => {
  const client = gwSni.client();
  fake.enqueue({ body: fixture('chat.json') });
  const r = await client.chat.completions.create({ model: 'gpt-tls', messages: [{ role: 'user', content: 'sni' }] });
  assert.equal(r.id, 'chatcmpl-e2e-0001');
  assert.equal(fake.requests[0].servername, 'localhost', 'SNI is the BackendTLSPolicy hostname');
  assertUpstreamRequest(fake.requests[0], { path: '/v1/chat/completions', sent: client.sent[0].body, key: 'sk-yaml-tls' });
});

test('BackendTLSPolicy hostname not in the certificate -> 502 JSON error', async () => {
  const res = await post(gwWrongName, '/v1/chat/completions', JSON.stringify({ model: 'gpt-tls', messages: [{ role: 'user', content: 'x' }] }));
  await assertErrorResponse(res, 502, 'certificate name mismatch');
  assert.equal(fake.requests.length, 0);
});

shutdownTest(() => [gw, gwUntrusted, gwSni, gwWrongName]);
