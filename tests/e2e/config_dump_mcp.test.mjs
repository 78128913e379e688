// /config_dump shows the MCP gateway's configuration: an MCPRoute from YAML (two backends, one
// upstream API key inline and one from a Secret, header matches, tool selectors, OAuth with a local
// JWKS, apiKeyAuth, required scopes) and the route made by --mcp-json, with the session settings
// and the timeout, and never a secret: no upstream API key, client API key, session seed or
// Authorization header value appears anywhere in the dump text (nor base64 of one). A reload
// shows the new generation's route.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { startGateway, freePort, closedPort, fetchT, T } from './lib/gateway.mjs';
import { assertNoSanitizerReport } from './lib/common.mjs';
import { newKey, jwksOf } from './lib/jwt.mjs';

const INLINE_KEY = 'mcp-dump-inline-key-7d1e55a0c3';
const SECRET_REF_KEY = 'mcp-dump-secretref-key-0b9f6a21e8';
const CLIENT_KEY_A = 'mcp-dump-client-key-a-4e2d90f1';
const CLIENT_KEY_B = 'mcp-dump-client-key-b-c81a7b36';
const SEED_1 = 'mcp-dump-session-seed-one-5a5a5a5a5a';
const SEED_2 = 'mcp-dump-session-seed-two-6b6b6b6b6b';
const JSON_TOKEN = 'mcp-dump-json-bearer-token-93e0d7c2';
const JSON_HEADER_KEY = 'mcp-dump-json-x-api-key-15f4b8aa';

const gateways = [];
after(async () => {
  for (const g of gateways) await g.close();
});

async function start(opts) {
  const g = await startGateway(opts);
  gateways.push(g);
  return g;
}

async function dumpOf(g) {
  const res = await fetchT(`${g.adminURL}/config_dump`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') || '', /json/);
  const text = await res.text();
  return { text, dump: JSON.parse(text) };
}

function assertNoSecret(text, secrets) {
  for (const s of secrets) {
    assert.ok(!text.includes(s), `secret ${s.slice(0, 12)}... in /config_dump`);
    assert.ok(!text.includes(Buffer.from(s).toString('base64')), `base64 of secret ${s.slice(0, 12)}... in /config_dump`);
  }
}

function yamlConfig({ port, mcpPath = '/mcp', localRs, localEs, toolsPort, notesPort, issuer }) {
  const jwks = JSON.stringify(jwksOf(localRs, localEs));
  return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: aigw-e2e, namespace: default}
spec:
  gatewayClassName: aigw-e2e
  listeners: [{name: http, protocol: HTTP, port: ${port}}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: tools, namespace: default}
spec: {endpoints: [{ip: {address: 127.0.0.1, port: ${toolsPort}}}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: notes, namespace: default}
spec: {endpoints: [{ip: {address: 127.0.0.1, port: ${notesPort}}}]}
---
apiVersion: v1
kind: Secret
metadata: {name: notes-upstream, namespace: default}
data: {apiKey: ${Buffer.from(SECRET_REF_KEY).toString('base64')}}
---
apiVersion: v1
kind: Secret
metadata: {name: mcp-clients, namespace: default}
stringData: {client-a: ${CLIENT_KEY_A}, client-b: ${CLIENT_KEY_B}}
---
apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: MCPRoute
metadata: {name: dump-route, namespace: default}
spec:
  parentRefs: [{name: aigw-e2e, kind: Gateway, group: gateway.networking.k8s.io}]
  path: ${mcpPath}
  headers:
    - {name: X-Tenant, value: acme}
  backendRefs:
    - name: tools
      kind: Backend
      group: gateway.envoyproxy.io
      path: /tools/mcp
      toolSelector: {include: [add, subtract]}
      securityPolicy: {apiKey: {inline: ${INLINE_KEY}}}
    - name: notes
      kind: Backend
      group: gateway.envoyproxy.io
      toolSelector: {includeRegex: ["^note_.*"]}
      securityPolicy: {apiKey: {secretRef: {name: notes-upstream}, header: X-Notes-Key}}
  securityPolicy:
    oauth:
      issuer: ${issuer}
      audiences: [aigw-dump]
      jwks:
        localJWKS:
          type: Inline
          inline: '${jwks}'
      protectedResourceMetadata:
        resource: http://127.0.0.1:${port}${mcpPath}
        resourceName: dump e2e
        scopesSupported: [mcp:tools, mcp:notes]
        resourceSigningAlgValuesSupported: [RS256, ES256]
    apiKeyAuth:
      credentialRefs: [{name: mcp-clients}]
      extractFrom: [{headers: [X-Client-Key]}, {params: [api_key]}]
      forwardClientIDHeader: X-Client-ID
      sanitize: true
    authorization:
      requiredScopes: [mcp:tools]
      tools:
        - {name: notes__note_add, scopes: [mcp:notes]}
        - {nameRegex: "^tools__", scopes: [mcp:tools]}
`;
}

test('MCPRoute from YAML: route, backends, security policy, session settings and timeout; no secret in the dump', async () => {
  const localRs = newKey('RS256', 'dump-rs');
  const localEs = newKey('ES256', 'dump-es');
  const port = await freePort();
  const cfg = {
    port,
    localRs,
    localEs,
    toolsPort: await closedPort(),
    notesPort: await closedPort(),
    issuer: `http://127.0.0.1:${await closedPort()}/realms/dump`,
  };
  const g = await start({
    port,
    config: yamlConfig(cfg),
    args: ['--mcp-session-seed', `${SEED_1},${SEED_2}`, '--request-timeout', '45s'],
  });
  const { text, dump } = await dumpOf(g);
  assert.equal(dump.generation, 1);
  assert.equal(dump.mcpRoutes.length, 1);
  const r = dump.mcpRoutes[0];
  assert.equal(r.name, 'default/dump-route');
  assert.equal(r.path, '/mcp');
  assert.deepEqual(r.headers, [{ type: 'Exact', name: 'x-tenant', value: 'acme' }]);
  assert.equal(r.requestTimeoutMs, 45_000);
  assert.equal(r.fanoutTimeoutMs, 15_000, 'the fan-out default, under the route timeout');

  assert.equal(r.backends.length, 2);
  const [tools, notes] = r.backends;
  assert.deepEqual(tools, {
    name: 'tools', host: '127.0.0.1', port: cfg.toolsPort, tls: false, sni: null, caPEM: false, path: '/tools/mcp',
    toolSelector: { include: ['add', 'subtract'], includeRegex: [] },
    apiKey: { header: 'authorization', source: 'inline', secretRef: null, value: '[redacted]' },
  });
  assert.deepEqual(notes, {
    name: 'notes', host: '127.0.0.1', port: cfg.notesPort, tls: false, sni: null, caPEM: false, path: '/mcp',
    toolSelector: { include: [], includeRegex: ['^note_.*'] },
    apiKey: { header: 'x-notes-key', source: 'secretRef', secretRef: 'default/notes-upstream', value: '[redacted]' },
  });

  const sp = r.securityPolicy;
  assert.deepEqual(sp.oauth, {
    issuer: cfg.issuer,
    audiences: ['aigw-dump'],
    jwks: { source: 'local', keyIds: ['dump-rs', 'dump-es'] },
    protectedResourceMetadata: {
      resource: `http://127.0.0.1:${port}/mcp`, resourceName: 'dump e2e', scopesSupported: ['mcp:tools', 'mcp:notes'],
      resourceSigningAlgValuesSupported: ['RS256', 'ES256'], resourceDocumentation: null, resourcePolicyUri: null,
    },
  });
  assert.deepEqual(sp.apiKeyAuth, {
    clients: [{ clientID: 'client-a', key: '[redacted]' }, { clientID: 'client-b', key: '[redacted]' }],
    extractFrom: { headers: ['x-client-key'], params: ['api_key'], cookies: [] },
    forwardClientIDHeader: 'x-client-id',
    sanitize: true,
  });
  assert.deepEqual(sp.authorization, {
    requiredScopes: ['mcp:tools'],
    tools: [
      { name: 'notes__note_add', nameRegex: null, scopes: ['mcp:notes'] },
      { name: null, nameRegex: '^tools__', scopes: ['mcp:tools'] },
    ],
  });
  assert.deepEqual(dump.mcpSession, { maxAgeSeconds: 86400, seeds: 2, randomSeed: false });

  // Nothing secret, in any form: the keys, the seeds, the JWKS's key material (public, but not
  // echoed: a pasted private JWK must never be).
  assertNoSecret(text, [INLINE_KEY, SECRET_REF_KEY, CLIENT_KEY_A, CLIENT_KEY_B, SEED_1, SEED_2]);
  assert.ok(!text.includes(localRs.publicJwk.n), 'the local JWKS key material is not dumped');
  assert.ok(!text.includes(localEs.publicJwk.x), 'the local JWKS key material is not dumped');
  assertNoSecret(g.stderr, [INLINE_KEY, SECRET_REF_KEY, CLIENT_KEY_A, CLIENT_KEY_B, SEED_1, SEED_2]);

  // A reload: the new generation's route is what the dump shows.
  fs.writeFileSync(g.configPath, yamlConfig({ ...cfg, mcpPath: '/tenant/mcp' }));
  process.kill(g.pid, 'SIGHUP');
  const deadline = Date.now() + T(10_000);
  let next = null;
  while (Date.now() < deadline) {
    next = await dumpOf(g);
    if (next.dump.generation >= 2) break;
    await sleep(50);
  }
  assert.ok(next.dump.generation >= 2, `no reload seen (generation ${next.dump.generation})`);
  assert.equal(next.dump.mcpRoutes[0].path, '/tenant/mcp');
  assert.equal(next.dump.mcpRoutes[0].securityPolicy.oauth.protectedResourceMetadata.resource, `http://127.0.0.1:${port}/tenant/mcp`);
  assert.deepEqual(next.dump.mcpSession, { maxAgeSeconds: 86400, seeds: 2, randomSeed: false });
  assertNoSecret(next.text, [INLINE_KEY, SECRET_REF_KEY, CLIENT_KEY_A, CLIENT_KEY_B, SEED_1, SEED_2]);

  const ex = await g.stop({ timeoutMs: T(10_000) });
  assert.equal(ex.code, 0);
  assertNoSanitizerReport(g);
});

test('--mcp-json: the route and its servers show, the header values do not; a random session seed is said so', async () => {
  const weatherPort = await closedPort();
  const notesPort = await closedPort();
  const servers = {
    mcpServers: {
      weather: { type: 'http', url: `https://127.0.0.1:${weatherPort}/v1/mcp?x=1`, headers: { Authorization: `Bearer ${JSON_TOKEN}` }, includeTools: ['forecast'] },
      notes: { url: `http://127.0.0.1:${notesPort}/mcp`, headers: { 'X-Api-Key': JSON_HEADER_KEY } },
      plain: { url: `http://127.0.0.1:${notesPort}` },
    },
  };
  const g = await start({ args: ['--mcp-json', JSON.stringify(servers)] });
  const { text, dump } = await dumpOf(g);
  assert.equal(dump.generation, 1);
  assert.equal(dump.mcpRoutes.length, 1);
  const r = dump.mcpRoutes[0];
  assert.equal(r.name, 'default/mcp-json');
  assert.equal(r.path, '/mcp');
  assert.deepEqual(r.headers, []);
  assert.equal(r.requestTimeoutMs, 30 * 60 * 1000, 'the MCP default without --request-timeout');
  assert.equal(r.fanoutTimeoutMs, 15_000);
  assert.deepEqual(r.securityPolicy, { oauth: null, apiKeyAuth: null, authorization: null });
  const byName = Object.fromEntries(r.backends.map((b) => [b.name, b]));
  assert.deepEqual(Object.keys(byName).sort(), ['notes', 'plain', 'weather']);
  assert.deepEqual(byName.weather, {
    name: 'weather', host: '127.0.0.1', port: weatherPort, tls: true, sni: null, caPEM: false, path: '/v1/mcp?x=1',
    toolSelector: { include: ['forecast'], includeRegex: [] },
    apiKey: { header: 'authorization', source: 'mcpServers', secretRef: null, value: '[redacted]' },
  });
  assert.deepEqual(byName.notes.apiKey, { header: 'x-api-key', source: 'mcpServers', secretRef: null, value: '[redacted]' });
  assert.equal(byName.plain.apiKey, null);
  assert.equal(byName.plain.path, '/');
  assert.deepEqual(dump.mcpSession, { maxAgeSeconds: 86400, seeds: 0, randomSeed: true });
  assertNoSecret(text, [JSON_TOKEN, JSON_HEADER_KEY, `Bearer ${JSON_TOKEN}`]);
  assertNoSecret(g.stderr, [JSON_TOKEN, JSON_HEADER_KEY]);
  const ex = await g.stop({ timeoutMs: T(10_000) });
  assert.equal(ex.code, 0);
  assertNoSanitizerReport(g);
});
