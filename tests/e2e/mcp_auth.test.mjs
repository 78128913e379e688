// End-to-end: MCPRoute authorization. Keys and JWTs (RS256, ES256) are made here with node:crypto; a
// small authorization server on 127.0.0.1 publishes its metadata and a JWKS it can rotate. Three
// gateways cover the three key sources (remoteJWKS, localJWKS, issuer discovery); the official SDK
// Client connects with the token in its requestInit headers. Also: the 401/403 challenges, the
// well-known metadata documents, sessions bound to the token's subject or the API-key client,
// apiKeyAuth (header, query parameter, cookie; forwardClientIDHeader), and what the MCP servers
// receive: never the client's token or key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { discoverOAuthProtectedResourceMetadata, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

import { startGateway, freePort, closedPort, T } from './lib/gateway.mjs';
import { assertNoSanitizerReport } from './lib/common.mjs';
import { FakeIdp, newKey, signJwt, jwksOf, nowS } from './lib/jwt.mjs';

const BACKEND_KEY = 'backend-key-e2e-31f0a9';
const KEY_A = 'client-key-a-5c2e91d7f0';
const KEY_B = 'client-key-b-88aa03be42';
const SEED = 'mcp-auth-e2e-seed-0123456789abcdef';
// The authorizer refetches a key set for an unknown kid at most this often (GW_MCP_AUTH_REFETCH_INTERVAL_MS).
const REFETCH_INTERVAL_MS = 30_000;

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function toolsServer() {
  const s = new McpServer({ name: 'tools', version: '1.0.0' });
  s.registerTool('add', { description: 'adds', inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }));
  return s;
}

function notesServer() {
  const s = new McpServer({ name: 'notes', version: '1.0.0' });
  s.registerTool('note', { description: 'notes', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text: `noted: ${text}` }] }));
  return s;
}

// Stateful SSE server that requires its own API key (Authorization: Bearer BACKEND_KEY, injected by
// the gateway from the backendRef's securityPolicy) and records every request's URL and headers.
function startTools() {
  const transports = new Map();
  const seen = { requests: [] };
  const srv = http.createServer(async (req, res) => {
    seen.requests.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    if (req.headers.authorization !== `Bearer ${BACKEND_KEY}`) {
      res.writeHead(401).end();
      return;
    }
    const body = req.method === 'POST' ? JSON.parse(await readBody(req)) : undefined;
    const sid = req.headers['mcp-session-id'];
    if (sid && transports.has(sid)) {
      await transports.get(sid).handleRequest(req, res, body);
      return;
    }
    if (!sid && req.method === 'POST' && isInitializeRequest(body)) {
      const t = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => transports.set(id, t),
      });
      t.onclose = () => { if (t.sessionId) transports.delete(t.sessionId); };
      await toolsServer().connect(t);
      await t.handleRequest(req, res, body);
      return;
    }
    res.writeHead(sid ? 404 : 400).end();
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, port: srv.address().port, seen })));
}

// Stateless JSON server without credentials of its own; records every request too.
function startNotes() {
  const seen = { requests: [] };
  const srv = http.createServer(async (req, res) => {
    seen.requests.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const body = JSON.parse(await readBody(req));
    const s = notesServer();
    const t = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => { t.close(); s.close(); });
    await s.connect(t);
    await t.handleRequest(req, res, body);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, port: srv.address().port, seen })));
}

const gatewayDoc = (port) => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: aigw-e2e, namespace: default}
spec:
  gatewayClassName: aigw-e2e
  listeners: [{name: http, protocol: HTTP, port: ${port}}]
`;

const backendsDoc = () => `apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: tools, namespace: default}
spec: {endpoints: [{ip: {address: 127.0.0.1, port: ${tools.port}}}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: notes, namespace: default}
spec: {endpoints: [{ip: {address: 127.0.0.1, port: ${notes.port}}}]}
`;

// The route "oauth-route" at /mcp with both backends; securityPolicy appended as given (indented).
const oauthRouteDoc = (securityPolicy) => `apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: MCPRoute
metadata: {name: oauth-route, namespace: default}
spec:
  parentRefs: [{name: aigw-e2e, kind: Gateway, group: gateway.networking.k8s.io}]
  path: /mcp
  backendRefs:
    - name: tools
      kind: Backend
      group: gateway.envoyproxy.io
      securityPolicy: {apiKey: {inline: ${BACKEND_KEY}}}
    - name: notes
      kind: Backend
      group: gateway.envoyproxy.io
${securityPolicy}`;

// remoteJWKS + an apiKeyAuth route.
function remoteConfig(port) {
  return [gatewayDoc(port), oauthRouteDoc(`  securityPolicy:
    oauth:
      issuer: ${idp.issuer}
      jwks: {remoteJWKS: {uri: ${idp.jwksUri}}}
      protectedResourceMetadata:
        resource: http://127.0.0.1:${port}/mcp
        resourceName: aigw e2e
        scopesSupported: [mcp:tools, mcp:read]
        resourceSigningAlgValuesSupported: [RS256, ES256]
        resourceDocumentation: https://docs.example.com/mcp
`), `apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: MCPRoute
metadata: {name: keyed, namespace: default}
spec:
  parentRefs: [{name: aigw-e2e, kind: Gateway, group: gateway.networking.k8s.io}]
  path: /keyed/mcp
  backendRefs:
    - name: tools
      kind: Backend
      group: gateway.envoyproxy.io
      securityPolicy: {apiKey: {inline: ${BACKEND_KEY}}}
    - name: notes
      kind: Backend
      group: gateway.envoyproxy.io
  securityPolicy:
    apiKeyAuth:
      credentialRefs: [{name: mcp-clients}]
      extractFrom: [{headers: [X-Client-Key]}, {params: [api_key]}, {cookies: [aigw_key]}]
      forwardClientIDHeader: X-Client-ID
      sanitize: true
`, `apiVersion: v1
kind: Secret
metadata: {name: mcp-clients, namespace: default}
stringData: {client-a: ${KEY_A}, client-b: ${KEY_B}}
`, backendsDoc()].join('---\n');
}

// localJWKS (inline), explicit audiences, an issuer nobody answers for.
function localConfig(port, issuer) {
  return [gatewayDoc(port), oauthRouteDoc(`  securityPolicy:
    oauth:
      issuer: ${issuer}
      audiences: [aigw-e2e-local]
      jwks:
        localJWKS:
          type: Inline
          inline: '${JSON.stringify(jwksOf(localRs, localEs))}'
      protectedResourceMetadata:
        resource: http://127.0.0.1:${port}/mcp
        scopesSupported: [mcp:tools]
`), backendsDoc()].join('---\n');
}

// No jwks: the jwks_uri comes from the issuer's RFC 8414 metadata.
function discoveryConfig(port) {
  return [gatewayDoc(port), oauthRouteDoc(`  securityPolicy:
    oauth:
      issuer: ${idpDisco.issuer}
      protectedResourceMetadata:
        resource: http://127.0.0.1:${port}/mcp
`), backendsDoc()].join('---\n');
}

// securityPolicy.authorization (aigw extension): every request needs mcp:access; tools__add also
// tools:add, and every notes__ tool notes:write (a regex rule).
function scopedConfig(port) {
  return [gatewayDoc(port), oauthRouteDoc(`  securityPolicy:
    oauth:
      issuer: ${idp.issuer}
      jwks: {remoteJWKS: {uri: ${idp.jwksUri}}}
      protectedResourceMetadata:
        resource: http://127.0.0.1:${port}/mcp
        scopesSupported: [mcp:access, tools:add, notes:write]
    authorization:
      requiredScopes: [mcp:access]
      tools:
        - name: tools__add
          scopes: [tools:add]
        - nameRegex: ^notes__
          scopes: [notes:write]
`), backendsDoc()].join('---\n');
}

// The same route name without any securityPolicy: makes anonymous sessions with the same seed.
function anonymousConfig(port) {
  return [gatewayDoc(port), oauthRouteDoc(''), backendsDoc()].join('---\n');
}

let tools, notes, idp, idpDisco, gw, gwLocal, gwDisco, gwScoped;
let rsKey, esKey, rotatedKey, strangerKey, localRs, localEs, localIssuer;

before(async () => {
  rsKey = newKey('RS256', 'rs-1');
  esKey = newKey('ES256', 'es-1');
  rotatedKey = newKey('RS256', 'rs-2');
  strangerKey = newKey('RS256', 'rs-1'); // same kid as rsKey, another key: a forgery
  localRs = newKey('RS256', 'local-rs');
  localEs = newKey('ES256', 'local-es');
  tools = await startTools();
  notes = await startNotes();
  idp = await new FakeIdp({ keys: [rsKey, esKey] }).start();
  idpDisco = await new FakeIdp({ issuerPath: '/realms/disco', keys: [rsKey] }).start();
  localIssuer = `http://127.0.0.1:${await closedPort()}/realms/offline`;
  const args = ['--mcp-session-seed', SEED];
  const p1 = await freePort();
  // One worker: key caches are per worker, and the rotation test reasons about one cache.
  gw = await startGateway({ port: p1, workers: 1, config: remoteConfig(p1), args });
  const p2 = await freePort();
  gwLocal = await startGateway({ port: p2, config: localConfig(p2, localIssuer), args });
  const p3 = await freePort();
  gwDisco = await startGateway({ port: p3, workers: 1, config: discoveryConfig(p3), args });
  const p4 = await freePort();
  gwScoped = await startGateway({ port: p4, config: scopedConfig(p4), args });
});

after(async () => {
  for (const g of [gw, gwLocal, gwDisco, gwScoped]) await g?.close();
  for (const s of [tools, notes]) { s?.srv.closeAllConnections?.(); s?.srv.close(); }
  await idp?.close();
  await idpDisco?.close();
});

const resourceOf = (g) => `${g.url}/mcp`;

/** A token for gateway g's route: iss, aud (the resource), sub alice, 10 minutes; over overrides
 * (undefined removes a claim). */
function token(key, over = {}, g = gw, issuer = idp.issuer) {
  return signJwt(key, { iss: issuer, aud: resourceOf(g), sub: 'alice', iat: nowS(), exp: nowS() + 600, ...over });
}

async function connect(url, headers = {}) {
  const client = new Client({ name: 'e2e-auth', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  return { client, transport };
}

async function until(cond, ms) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}

const bearer = (t) => ({ Authorization: `Bearer ${t}` });
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

async function post(url, body, headers = {}, signal) {
  const res = await fetch(url, {
    method: 'POST',
    signal: signal ?? AbortSignal.timeout(T(10_000)),
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

// Every request the MCP servers received since `marks` (taken with mark()).
const mark = () => ({ t: tools.seen.requests.length, n: notes.seen.requests.length });
const since = (m) => [...tools.seen.requests.slice(m.t).map((r) => ({ ...r, be: 'tools' })),
  ...notes.seen.requests.slice(m.n).map((r) => ({ ...r, be: 'notes' }))];

/** Asserts that no upstream request carries any of the secrets and that only the tools backend got
 * an Authorization header, its own. */
function assertUpstreamClean(reqs, secrets) {
  assert.ok(reqs.length > 0, 'the backends were called');
  for (const r of reqs) {
    for (const [k, v] of Object.entries(r.headers)) {
      for (const s of secrets) assert.ok(!String(v).includes(s), `${r.be} received a client secret in ${k}`);
    }
    for (const s of secrets) assert.ok(!r.url.includes(s), `${r.be} received a client secret in its URL`);
    assert.equal(r.url, '/mcp', 'the backend path, never the client target');
    assert.equal(r.headers.cookie, undefined, 'no client cookie upstream');
    assert.equal(r.headers['x-client-key'], undefined, 'no client API-key header upstream');
    if (r.be === 'tools') assert.equal(r.headers.authorization, `Bearer ${BACKEND_KEY}`);
    else assert.equal(r.headers.authorization, undefined);
  }
}

// ---------------------------------------------------------------------------- OAuth, remoteJWKS

test('RS256 and ES256 tokens: the SDK client initializes, lists and calls tools; the MCP servers never see the token', async () => {
  for (const key of [rsKey, esKey]) {
    const m = mark();
    const tok = token(key);
    const { client } = await connect(`${gw.url}/mcp`, bearer(tok));
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(names, ['notes__note', 'tools__add']);
    const r = await client.callTool({ name: 'tools__add', arguments: { a: 2, b: 40 } });
    assert.equal(r.content[0].text, '42');
    const n = await client.callTool({ name: 'notes__note', arguments: { text: key.alg } });
    assert.equal(n.content[0].text, `noted: ${key.alg}`);
    await client.close();
    assertUpstreamClean(since(m), [tok, tok.split('.')[2]]);
  }
  // The key set was fetched from the remoteJWKS URI; the tokens' scopes were not required.
  assert.ok(idp.hits('/jwks.json').length >= 1);
});

test('no token: 401 with the Bearer challenge pointing at the path-inserted metadata URL, scope from scopesSupported', async () => {
  const res = await fetch(`${gw.url}/mcp`, { method: 'POST', body: JSON.stringify(INIT),
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } });
  assert.equal(res.status, 401);
  const www = res.headers.get('www-authenticate');
  assert.match(www, /^Bearer /);
  assert.doesNotMatch(www, /error=/, 'no error code when no credentials were sent (RFC 6750 3.1)');
  const p = extractWWWAuthenticateParams(res);
  assert.equal(String(p.resourceMetadataUrl), `${gw.url}/.well-known/oauth-protected-resource/mcp`);
  assert.equal(p.scope, 'mcp:tools mcp:read');
  assert.equal((await res.json()).error, 'invalid_request');
  // The SDK client without credentials fails to connect.
  const client = new Client({ name: 'e2e-auth', version: '1.0.0' });
  await assert.rejects(client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`))));
  // Another scheme is "no token" too; a malformed Bearer header is 400 invalid_request.
  const basic = await post(`${gw.url}/mcp`, INIT, { authorization: 'Basic YWxpY2U6cHc=' });
  assert.equal(basic.status, 401);
  assert.doesNotMatch(basic.headers.get('www-authenticate'), /error=/);
  for (const bad of ['Bearer', `Bearer ${token(rsKey)}, ${token(esKey)}`]) {
    const r = await post(`${gw.url}/mcp`, INIT, { authorization: bad });
    assert.equal(r.status, 400, bad.slice(0, 20));
    assert.match(r.headers.get('www-authenticate'), /error="invalid_request"/);
  }
  // GET and DELETE need the token as well.
  for (const method of ['GET', 'DELETE']) {
    const r = await fetch(`${gw.url}/mcp`, { method, headers: { accept: 'text/event-stream', 'mcp-session-id': 'x' } });
    assert.equal(r.status, 401, method);
    await r.arrayBuffer();
  }
});

test('invalid tokens: expired, wrong audience, wrong issuer, bad signature, alg none, unknown kid -> 401 invalid_token', async () => {
  const m = mark();
  const cases = {
    expired: token(rsKey, { exp: nowS() - 3600, iat: nowS() - 7200 }),
    'wrong audience': token(rsKey, { aud: 'http://127.0.0.1:1/other' }),
    'no audience': token(esKey, { aud: undefined }),
    'wrong issuer': token(rsKey, { iss: 'https://evil.example.com/realms/e2e' }),
    'bad signature': token(strangerKey),
    'tampered payload': (() => {
      const [h, , s] = token(rsKey).split('.');
      const p = Buffer.from(JSON.stringify({ iss: idp.issuer, aud: resourceOf(gw), sub: 'root', exp: nowS() + 600 })).toString('base64url');
      return `${h}.${p}.${s}`;
    })(),
    'alg none': (() => {
      const t = token(rsKey, {}, gw).split('.');
      return `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${t[1]}.`;
    })(),
    'not yet valid': token(rsKey, { nbf: nowS() + 3600 }),
    'no exp': token(esKey, { exp: undefined }),
    'unknown kid': signJwt(rotatedKey, { iss: idp.issuer, aud: resourceOf(gw), sub: 'alice', exp: nowS() + 600 }),
  };
  for (const [what, tok] of Object.entries(cases)) {
    const r = await post(`${gw.url}/mcp`, INIT, bearer(tok));
    assert.equal(r.status, 401, what);
    const www = r.headers.get('www-authenticate');
    assert.match(www, /error="invalid_token"/, what);
    assert.match(www, /resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"/, what);
    assert.equal(r.json.error, 'invalid_token', what);
    // Only a validly signed expired token is told apart.
    assert.equal(r.json.error_description, what === 'expired' ? 'The access token expired' : 'The access token is invalid', what);
    assert.ok(!r.text.includes(tok.split('.')[2] || tok), `${what}: the token is not echoed`);
  }
  assert.equal(since(m).length, 0, 'no refused request reached an MCP server');
  assert.ok(!gw.stderr.includes(cases.expired.split('.')[2]), 'no token in the log');
});

test('scopes: scopesSupported are advertised, not required (as the reference); a token without them is served', async () => {
  // This route has no securityPolicy.authorization (the aigw extension tested below), so a
  // token holding none of the advertised scopes is accepted.
  const { client } = await connect(`${gw.url}/mcp`, bearer(token(esKey, { scope: undefined })));
  assert.equal((await client.listTools()).tools.length, 2);
  await client.close();
  const { client: c2 } = await connect(`${gw.url}/mcp`, bearer(token(rsKey, { scope: 'unrelated' })));
  assert.equal((await c2.listTools()).tools.length, 2);
  await c2.close();
});

test('Protected Resource Metadata at the root and the path-inserted URL; HEAD; CORS; 405 for other methods', async () => {
  const want = {
    authorization_servers: [idp.issuer],
    bearer_methods_supported: ['header'],
    resource: `${gw.url}/mcp`,
    resource_documentation: 'https://docs.example.com/mcp',
    resource_name: 'aigw e2e',
    resource_signing_alg_values_supported: ['RS256', 'ES256'],
    scopes_supported: ['mcp:tools', 'mcp:read'],
  };
  for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
    const r = await fetch(`${gw.url}${path}`);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get('content-type'), /^application\/json/);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    const text = await r.text();
    assert.deepEqual(JSON.parse(text), want, path);
    assert.deepEqual(Object.keys(JSON.parse(text)), Object.keys(want), 'members in the reference order');
    const h = await fetch(`${gw.url}${path}`, { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal((await h.arrayBuffer()).byteLength, 0);
  }
  // The SDK's own discovery (path-aware first) finds the same document through the gateway.
  const viaSdk = await discoverOAuthProtectedResourceMetadata(new URL(`${gw.url}/mcp`));
  assert.equal(viaSdk.resource, `${gw.url}/mcp`);
  assert.deepEqual(viaSdk.authorization_servers, [idp.issuer]);
  const pre = await fetch(`${gw.url}/.well-known/oauth-protected-resource/mcp`, { method: 'OPTIONS',
    headers: { origin: 'http://localhost:6274', 'access-control-request-method': 'GET',
      'access-control-request-headers': 'mcp-protocol-version' } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), '*');
  assert.match(pre.headers.get('access-control-allow-headers'), /MCP-Protocol-Version/i);
  const post405 = await fetch(`${gw.url}/.well-known/oauth-protected-resource`, { method: 'POST', body: '{}' });
  assert.equal(post405.status, 405);
  assert.match(post405.headers.get('allow'), /GET, HEAD/);
  await post405.arrayBuffer();
  // Other paths under /.well-known/ are not the gateway's: the usual 404.
  const other = await fetch(`${gw.url}/.well-known/oauth-protected-resource/elsewhere`);
  assert.equal(other.status, 404);
  await other.arrayBuffer();
  // A CORS preflight on the MCP endpoint needs no token (it is not served there: 405, not 401).
  const opt = await fetch(`${gw.url}/mcp`, { method: 'OPTIONS', headers: { origin: 'http://localhost:6274' } });
  assert.equal(opt.status, 405);
  assert.equal(opt.headers.get('www-authenticate'), null);
  await opt.arrayBuffer();
});

test('Authorization Server Metadata: the issuer\'s own document, at the root and under the route path', async () => {
  for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/oauth-authorization-server/mcp']) {
    const r = await fetch(`${gw.url}${path}`);
    assert.equal(r.status, 200, path);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    assert.deepEqual(await r.json(), idp.metadata, path);
  }
  // The issuer's metadata was fetched at its RFC 8414 path-inserted URL.
  assert.ok(idp.hits('/.well-known/oauth-authorization-server/realms/e2e').length >= 1);
});

test('sessions are bound to the token subject: another subject gets 404 on POST, GET and DELETE', async () => {
  const alice = token(rsKey, { sub: 'alice' });
  const bob = token(esKey, { sub: 'bob' });
  const { client, transport } = await connect(`${gw.url}/mcp`, bearer(alice));
  const sid = transport.sessionId;
  const hdr = (t) => ({ ...bearer(t), 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
  const asBob = await post(`${gw.url}/mcp`, list, hdr(bob));
  assert.equal(asBob.status, 404);
  for (const method of ['GET', 'DELETE']) {
    const r = await fetch(`${gw.url}/mcp`, { method, headers: { ...hdr(bob), accept: 'text/event-stream' } });
    assert.equal(r.status, 404, method);
    await r.arrayBuffer();
  }
  // Nor a batch (the session's revision has none, which would be a 400: the subject is checked
  // when the session is opened, before that).
  assert.equal((await post(`${gw.url}/mcp`, [list], { ...bearer(bob), 'mcp-session-id': sid })).status, 404);
  // Alice, with another token of hers, still has her session.
  const again = await post(`${gw.url}/mcp`, list, hdr(token(esKey, { sub: 'alice' })));
  assert.equal(again.status, 200);
  assert.equal(again.json.result.tools.length, 2);
  assert.equal((await client.listTools()).tools.length, 2);
  await client.close();
  // A subject with '@' and ':' round-trips (reference bug #1560).
  const { client: c2 } = await connect(`${gw.url}/mcp`, bearer(token(rsKey, { sub: 'carol@example.com:x' })));
  assert.equal((await c2.callTool({ name: 'tools__add', arguments: { a: 1, b: 1 } })).content[0].text, '2');
  await c2.close();
});

test('a token without "sub" is refused (401): it could not own a session', async () => {
  const r = await post(`${gw.url}/mcp`, INIT, bearer(token(rsKey, { sub: undefined })));
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/);
  assert.match(r.headers.get('www-authenticate'), /resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp"/);
  assert.equal(r.json.error_description, 'The access token has no subject');
});

test('an anonymous session (same route, same seed, no auth when sealed) is refused with 404 on the OAuth route', async () => {
  const port = await freePort();
  const anon = await startGateway({ port, config: anonymousConfig(port), args: ['--mcp-session-seed', SEED] });
  try {
    const init = await post(`${anon.url}/mcp`, INIT);
    assert.equal(init.status, 200);
    const sid = init.headers.get('mcp-session-id');
    // The anonymous gateway serves it...
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
    const ok = await post(`${anon.url}/mcp`, list, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
    assert.equal(ok.status, 200);
    // ...the OAuth one does not, whatever valid token comes with it.
    const r = await post(`${gw.url}/mcp`, list, { ...bearer(token(rsKey)), 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
    assert.equal(r.status, 404);
  } finally {
    await anon.close();
    assertNoSanitizerReport(anon);
  }
});

// ---------------------------------------------------------------------------- required scopes (aigw extension)

const scopedUrl = () => `${gwScoped.url}/mcp`;
const scopedToken = (over) => token(rsKey, over, gwScoped);
const challenge = (scope) => `Bearer resource_metadata="${gwScoped.url}/.well-known/oauth-protected-resource/mcp", `
  + `error="insufficient_scope", scope="${scope}", error_description="The access token lacks a required scope"`;

test('authorization.requiredScopes: a valid token without the route scope gets 403 insufficient_scope on POST, GET and DELETE', async () => {
  const m = mark();
  for (const over of [{ scope: 'tools:add notes:write' }, { scope: undefined }, { scp: ['tools:add'] }, { scope: 'mcp:access2' }]) {
    const r = await post(scopedUrl(), INIT, bearer(scopedToken(over)));
    assert.equal(r.status, 403, JSON.stringify(over));
    assert.equal(r.headers.get('www-authenticate'), challenge('mcp:access'));
    assert.deepEqual(r.json, { error: 'insufficient_scope', error_description: 'The access token lacks a required scope' });
    const p = extractWWWAuthenticateParams(new Response(null, { status: 403, headers: r.headers }));
    assert.equal(p.scope, 'mcp:access');
    assert.equal(String(p.resourceMetadataUrl), `${gwScoped.url}/.well-known/oauth-protected-resource/mcp`);
  }
  const weak = scopedToken({ scope: 'tools:add' });
  for (const method of ['GET', 'DELETE']) {
    const r = await fetch(scopedUrl(), { method, headers: { ...bearer(weak), accept: 'text/event-stream', 'mcp-session-id': 'x' } });
    assert.equal(r.status, 403, method);
    assert.equal(r.headers.get('www-authenticate'), challenge('mcp:access'));
    await r.arrayBuffer();
  }
  // Still 401 without a token and for an invalid one: scopes are checked only on a valid token.
  assert.equal((await post(scopedUrl(), INIT)).status, 401);
  assert.equal((await post(scopedUrl(), INIT, bearer(token(strangerKey, { scope: 'mcp:access' }, gwScoped)))).status, 401);
  assert.equal(since(m).length, 0, 'no refused request reached an MCP server');
  // The SDK client with such a token cannot connect.
  const client = new Client({ name: 'e2e-auth', version: '1.0.0' });
  await assert.rejects(client.connect(new StreamableHTTPClientTransport(new URL(scopedUrl()), { requestInit: { headers: bearer(weak) } })));
});

test('authorization.tools: tools/list hides a tool whose scopes the token lacks, and calling it is 403 naming its scopes', async () => {
  const tok = scopedToken({ scope: 'mcp:access tools:add' });
  const { client, transport } = await connect(scopedUrl(), bearer(tok));
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['tools__add']);
  assert.equal((await client.callTool({ name: 'tools__add', arguments: { a: 20, b: 22 } })).content[0].text, '42');
  const m = mark();
  const hdr = { ...bearer(tok), 'mcp-session-id': transport.sessionId, 'mcp-protocol-version': '2025-06-18' };
  const call = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'notes__note', arguments: { text: 'x' } } };
  const r = await post(scopedUrl(), call, hdr);
  assert.equal(r.status, 403);
  assert.equal(r.headers.get('www-authenticate'), challenge('mcp:access notes:write'));
  assert.equal(r.json.error, 'insufficient_scope');
  // The name as JSON escapes spell it is the same tool.
  const escaped = JSON.stringify(call).replace('notes__note', 'notes\\u005f_note');
  assert.equal((await post(scopedUrl(), escaped, hdr)).status, 403);
  assert.equal(since(m).length, 0, 'the refused call never reached the notes server');
  // The SDK client's call of it fails as well; its session goes on serving what the token allows.
  await assert.rejects(client.callTool({ name: 'notes__note', arguments: { text: 'x' } }));
  assert.equal((await client.callTool({ name: 'tools__add', arguments: { a: 1, b: 2 } })).content[0].text, '3');
  await client.close();
  // Only the route scope: both tools hidden; an unguarded method still works.
  const { client: c2 } = await connect(scopedUrl(), bearer(scopedToken({ scope: 'mcp:access' })));
  assert.deepEqual((await c2.listTools()).tools, []);
  await c2.ping();
  await c2.close();
});

test('authorization.tools: a token with every scope lists and calls both tools; "scp" arrays count like "scope"', async () => {
  for (const over of [{ scope: 'notes:write mcp:access tools:add' }, { scope: undefined, scp: ['mcp:access', 'tools:add', 'notes:write'] }]) {
    const { client } = await connect(scopedUrl(), bearer(scopedToken(over)));
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['notes__note', 'tools__add'], JSON.stringify(over));
    assert.equal((await client.callTool({ name: 'tools__add', arguments: { a: 40, b: 2 } })).content[0].text, '42');
    assert.equal((await client.callTool({ name: 'notes__note', arguments: { text: 'scp' } })).content[0].text, 'noted: scp');
    await client.close();
  }
  // scp with only some of them filters the list the same way.
  const { client } = await connect(scopedUrl(), bearer(scopedToken({ scp: ['mcp:access', 'notes:write'] })));
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['notes__note']);
  await client.close();
});

test('authorization.tools with a 2025-03-26 batch: a member needing a missing scope makes the whole batch a 403', async () => {
  const init = { ...INIT, params: { ...INIT.params, protocolVersion: '2025-03-26' } };
  const full = scopedToken({ scope: 'mcp:access tools:add notes:write' });
  const r0 = await post(scopedUrl(), init, bearer(full));
  assert.equal(r0.status, 200);
  const sid = r0.headers.get('mcp-session-id');
  const weak = scopedToken({ scope: 'mcp:access tools:add' });
  const hdr = (t) => ({ ...bearer(t), 'mcp-session-id': sid, 'mcp-protocol-version': '2025-03-26' });
  assert.equal((await post(scopedUrl(), { jsonrpc: '2.0', method: 'notifications/initialized' }, hdr(full))).status, 202);
  const batch = [
    { jsonrpc: '2.0', id: 1, method: 'tools/list' },
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'tools__add', arguments: { a: 1, b: 1 } } },
    { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'notes__note', arguments: { text: 'b' } } },
  ];
  const m = mark();
  const refused = await post(scopedUrl(), batch, hdr(weak));
  assert.equal(refused.status, 403);
  assert.equal(refused.headers.get('www-authenticate'), challenge('mcp:access tools:add notes:write'));
  assert.equal(since(m).length, 0, 'no member ran');
  // Without the member that needs notes:write, the weaker token's batch runs; its list is filtered.
  const ok = await post(scopedUrl(), batch.slice(0, 2), hdr(weak));
  assert.equal(ok.status, 200);
  const byId = Object.fromEntries(ok.json.map((x) => [x.id, x]));
  assert.deepEqual(byId[1].result.tools.map((t) => t.name), ['tools__add']);
  assert.equal(byId[2].result.content[0].text, '2');
  const all = await post(scopedUrl(), batch, hdr(full));
  assert.equal(all.status, 200);
  assert.equal(all.json.length, 3);
  assert.equal(all.json.find((x) => x.id === 3).result.content[0].text, 'noted: b');
});

// ---------------------------------------------------------------------------- apiKeyAuth

test('apiKeyAuth: missing or wrong key 401; the right key in a header serves the SDK client; client id forwarded, key never', async () => {
  for (const headers of [{}, { 'x-client-key': 'wrong-key' }, { 'x-client-key': '' }, { authorization: `Bearer ${KEY_A}` }]) {
    const r = await post(`${gw.url}/keyed/mcp`, INIT, headers);
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.equal(r.headers.get('www-authenticate'), 'ApiKey realm="aigw"');
    assert.ok(!r.text.includes('wrong-key') && !r.text.includes(KEY_A));
  }
  const m = mark();
  // A client-sent X-Client-ID is dropped: only the gateway says who the client is.
  const { client } = await connect(`${gw.url}/keyed/mcp`, { 'X-Client-Key': KEY_A, 'X-Client-ID': 'root', Cookie: 'theme=dark' });
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['notes__note', 'tools__add']);
  assert.equal((await client.callTool({ name: 'tools__add', arguments: { a: 3, b: 4 } })).content[0].text, '7');
  await client.close();
  const reqs = since(m);
  assertUpstreamClean(reqs, [KEY_A, 'theme=dark']);
  for (const r of reqs) assert.equal(r.headers['x-client-id'], 'client-a', `${r.be} ${r.method}`);
});

test('apiKeyAuth: the key from a query parameter or a cookie; neither reaches the MCP servers', async () => {
  const m = mark();
  const q = await post(`${gw.url}/keyed/mcp?api_key=${encodeURIComponent(KEY_B)}&x=1`, INIT);
  assert.equal(q.status, 200, q.text);
  assert.ok(q.headers.get('mcp-session-id'));
  const c = await post(`${gw.url}/keyed/mcp`, INIT, { cookie: `theme=dark; aigw_key=${KEY_A}; lang=en` });
  assert.equal(c.status, 200, c.text);
  const reqs = since(m);
  assertUpstreamClean(reqs, [KEY_A, KEY_B, 'api_key', 'theme=dark']);
  assert.deepEqual(reqs.map((r) => r.headers['x-client-id']).sort(), ['client-a', 'client-a', 'client-b', 'client-b']);
  // The wrong key in the first source present decides, even with the right one in a later source.
  const mixed = await post(`${gw.url}/keyed/mcp?api_key=${KEY_A}`, INIT, { 'x-client-key': 'nope' });
  assert.equal(mixed.status, 401);
});

test('apiKeyAuth: a session belongs to its client; another client\'s key gets 404', async () => {
  const { client, transport } = await connect(`${gw.url}/keyed/mcp`, { 'X-Client-Key': KEY_A });
  const hdr = (key) => ({ 'x-client-key': key, 'mcp-session-id': transport.sessionId, 'mcp-protocol-version': '2025-06-18' });
  const list = { jsonrpc: '2.0', id: 3, method: 'tools/list' };
  assert.equal((await post(`${gw.url}/keyed/mcp`, list, hdr(KEY_B))).status, 404);
  assert.equal((await post(`${gw.url}/keyed/mcp`, list, hdr(KEY_A))).status, 200);
  await client.close();
});

// ---------------------------------------------------------------------------- OAuth, localJWKS

test('localJWKS: RS256 and ES256 tokens for the configured audience are served; the resource is not an audience then', async () => {
  for (const key of [localRs, localEs]) {
    const tok = token(key, { aud: ['other', 'aigw-e2e-local'] }, gwLocal, localIssuer);
    const { client } = await connect(`${gwLocal.url}/mcp`, bearer(tok));
    assert.equal((await client.callTool({ name: 'notes__note', arguments: { text: 'local' } })).content[0].text, 'noted: local');
    await client.close();
  }
  const refused = {
    'resource as audience': token(localRs, {}, gwLocal, localIssuer),
    'key of another issuer': token(rsKey, { aud: 'aigw-e2e-local' }, gwLocal, localIssuer),
    'wrong issuer': token(localEs, { aud: 'aigw-e2e-local' }, gwLocal, idp.issuer),
  };
  for (const [what, tok] of Object.entries(refused)) {
    const r = await post(`${gwLocal.url}/mcp`, INIT, bearer(tok));
    assert.equal(r.status, 401, what);
    assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/, what);
  }
});

test('localJWKS with an unreachable issuer: the Authorization Server Metadata falls back to the Keycloak-shaped document', async () => {
  const r = await fetch(`${gwLocal.url}/.well-known/oauth-authorization-server`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), {
    authorization_endpoint: `${localIssuer}/protocol/openid-connect/auth`,
    code_challenge_methods_supported: ['S256'],
    grant_types_supported: ['authorization_code'],
    issuer: localIssuer,
    jwks_uri: `${localIssuer}/protocol/openid-connect/certs`,
    response_types_supported: ['code'],
    scopes_supported: ['mcp:tools'],
    token_endpoint: `${localIssuer}/protocol/openid-connect/token`,
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
  });
  const prm = await (await fetch(`${gwLocal.url}/.well-known/oauth-protected-resource`)).json();
  assert.deepEqual(prm.authorization_servers, [localIssuer]);
});

// ---------------------------------------------------------------------------- OAuth, discovery

test('issuer discovery: a client leaving during the first fetch cancels its check; the next one waits for the same fetch', { timeout: T(20_000) }, async () => {
  idpDisco.delayMs = T(800);
  const tok = token(rsKey, {}, gwDisco, idpDisco.issuer);
  const ac = new AbortController();
  const gone = post(`${gwDisco.url}/mcp`, INIT, bearer(tok), ac.signal).catch(() => 'aborted');
  await sleep(T(150));
  ac.abort();
  assert.equal(await gone, 'aborted');
  // The request ended at once (logged as a client disconnect), not when the fetch came back.
  assert.ok(await until(() => gwDisco.logs.some((l) => l['x-envoy-origin-path'] === '/mcp' &&
    l.connection_termination_details === 'client_disconnected'), T(400)), 'the aborted check ended the request');
  assert.equal(idpDisco.requests.length, 1, 'the discovery fetch is still on its way');
  // Started while the discovery document is still on its way: joins that fetch.
  const { client } = await connect(`${gwDisco.url}/mcp`, bearer(tok));
  idpDisco.delayMs = 0;
  assert.equal((await client.callTool({ name: 'tools__add', arguments: { a: 20, b: 22 } })).content[0].text, '42');
  await client.close();
  assert.equal(idpDisco.hits('/.well-known/oauth-authorization-server/realms/disco').length, 1, 'one discovery fetch');
  assert.equal(idpDisco.hits('/jwks.json').length, 1, 'one key-set fetch, from the discovered jwks_uri');
  // Its metadata is what the gateway serves as Authorization Server Metadata.
  assert.deepEqual(await (await fetch(`${gwDisco.url}/.well-known/oauth-authorization-server/mcp`)).json(), idpDisco.metadata);
  // And audiences default to the resource: a token for another resource is refused.
  const other = await post(`${gwDisco.url}/mcp`, INIT, bearer(token(rsKey, { aud: `${gw.url}/mcp` }, gwDisco, idpDisco.issuer)));
  assert.equal(other.status, 401);
});

test('a client leaving while a metadata document is fetched; SIGTERM with a key-set fetch in flight exits 0', { timeout: T(30_000) }, async () => {
  const port = await freePort();
  const slow = await new FakeIdp({ issuerPath: '/realms/slow', keys: [rsKey] }).start();
  const g = await startGateway({ port, workers: 1, args: ['--mcp-session-seed', SEED], config: [gatewayDoc(port), oauthRouteDoc(`  securityPolicy:
    oauth:
      issuer: ${slow.issuer}
      protectedResourceMetadata:
        resource: http://127.0.0.1:${port}/mcp
`), backendsDoc()].join('---\n') });
  try {
    slow.delayMs = T(5000);
    const ac = new AbortController();
    const asm = fetch(`${g.url}/.well-known/oauth-authorization-server`, { signal: ac.signal }).catch(() => 'aborted');
    const ac2 = new AbortController();
    const check = post(`${g.url}/mcp`, INIT, bearer(token(rsKey, {}, g, slow.issuer)), ac2.signal).catch(() => 'aborted');
    await sleep(T(200));
    ac.abort();
    ac2.abort();
    assert.equal(await asm, 'aborted');
    assert.equal(await check, 'aborted');
    assert.equal(slow.requests.length, 1, 'one discovery fetch in flight');
    // The gateway still answers meanwhile (the PRM is local), and drains with the fetch pending.
    assert.equal((await fetch(`${g.url}/.well-known/oauth-protected-resource`)).status, 200);
    const ex = await g.stop({ timeoutMs: T(10_000) });
    assert.equal(ex.code, 0);
    assertNoSanitizerReport(g);
  } finally {
    await g.close();
    await slow.close();
  }
});

// ---------------------------------------------------------------------------- key rotation (last:
// it waits out the refetch interval counted from the key set's last fetch)

test('key rotation: an unknown kid is refused without hammering the IdP, then accepted after the rate-limited refetch', { timeout: T(60_000) + REFETCH_INTERVAL_MS }, async () => {
  const tok = token(rotatedKey);
  const before = idp.hits('/jwks.json').length;
  for (let i = 0; i < 3; i++) assert.equal((await post(`${gw.url}/mcp`, INIT, bearer(tok))).status, 401);
  assert.ok(idp.hits('/jwks.json').length - before <= 1, 'at most one refetch for a burst of unknown kids');
  idp.keys = [rotatedKey, esKey]; // the IdP rotates rs-1 out and rs-2 in
  const wait = idp.hits('/jwks.json').at(-1).at + REFETCH_INTERVAL_MS + 1000 - Date.now();
  if (wait > 0) await sleep(wait);
  const n = idp.hits('/jwks.json').length;
  const { client } = await connect(`${gw.url}/mcp`, bearer(tok));
  assert.equal((await client.callTool({ name: 'tools__add', arguments: { a: 5, b: 5 } })).content[0].text, '10');
  await client.close();
  assert.equal(idp.hits('/jwks.json').length, n + 1, 'the new key came from one refetch');
  // The rotated-out key no longer verifies.
  assert.equal((await post(`${gw.url}/mcp`, INIT, bearer(token(rsKey)))).status, 401);
});

test('gateways exit 0 on SIGTERM with no sanitizer report and no secret on stderr', async () => {
  for (const g of [gw, gwLocal, gwDisco, gwScoped]) {
    const ex = await g.stop({ timeoutMs: T(10_000) });
    assert.equal(ex.code, 0);
    assertNoSanitizerReport(g);
    for (const s of [KEY_A, KEY_B, BACKEND_KEY]) assert.ok(!g.stderr.includes(s), 'secret on stderr');
  }
});
