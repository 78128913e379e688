// End-to-end: the MCP metrics on the admin port's /metrics and the mcp_* fields of the access log,
// with the SDK's own Client driving aigw in front of SDK-written servers (one stateful answering
// with SSE and streaming progress, one stateless answering JSON, one that cannot be reached).
// Expected counts come from what the client actually POSTed, recorded by its fetch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomUUID } from 'node:crypto';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

import { startGateway, freePort, closedPort } from './lib/gateway.mjs';
import { parseProm, select, total } from './lib/prom.mjs';
import { readBody, rawPost, sleep } from './lib/mcp_util.mjs';
import { shutdownTest } from './lib/common.mjs';

// The stateful server holds its initialize answer this long, so its initialization sample (and
// only its) is above the 0.1 s bucket bound.
const SLOW_INIT_MS = 150;
// Gap between the progress notifications of the "count" tool: the call lasts at least 3 gaps.
const PROGRESS_GAP_MS = 60;

function alphaServer() {
  const s = new McpServer({ name: 'alpha', version: '1.0.0' }, { capabilities: { logging: {} } });
  s.registerTool('echo', { description: 'echoes', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }));
  s.registerTool('count', { description: 'counts with progress', inputSchema: { n: z.number() } },
    async ({ n }, extra) => {
      const token = extra._meta?.progressToken;
      for (let i = 1; i <= n; i++) {
        await new Promise((r) => setTimeout(r, PROGRESS_GAP_MS));
        if (token !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: n } });
        }
      }
      return { content: [{ type: 'text', text: `counted to ${n}` }] };
    });
  return s;
}

function betaServer() {
  const s = new McpServer({ name: 'beta', version: '1.0.0' });
  s.registerTool('add', { description: 'adds', inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }));
  return s;
}

// Stateful, SSE answers, one transport per session.
function startAlpha() {
  const transports = new Map();
  const srv = http.createServer(async (req, res) => {
    const body = req.method === 'POST' ? JSON.parse(await readBody(req)) : undefined;
    const sid = req.headers['mcp-session-id'];
    if (sid && transports.has(sid)) {
      await transports.get(sid).handleRequest(req, res, body);
      return;
    }
    if (!sid && req.method === 'POST' && isInitializeRequest(body)) {
      await sleep(SLOW_INIT_MS);
      const t = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => transports.set(id, t),
      });
      t.onclose = () => { if (t.sessionId) transports.delete(t.sessionId); };
      await alphaServer().connect(t);
      await t.handleRequest(req, res, body);
      return;
    }
    res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' })
      .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, port: srv.address().port })));
}

// Stateless, JSON answers; no GET stream.
function startBeta() {
  const srv = http.createServer(async (req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const body = JSON.parse(await readBody(req));
    const s = betaServer();
    const t = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => { t.close(); s.close(); });
    await s.connect(t);
    await t.handleRequest(req, res, body);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, port: srv.address().port })));
}

function yaml(port, alphaPort, betaPort, gammaPort) {
  const backend = (name, p) => `---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: ${name}, namespace: default}
spec: {endpoints: [{ip: {address: 127.0.0.1, port: ${p}}}]}
`;
  return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: aigw-e2e, namespace: default}
spec:
  gatewayClassName: aigw-e2e
  listeners: [{name: http, protocol: HTTP, port: ${port}}]
---
apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: MCPRoute
metadata: {name: obs, namespace: default}
spec:
  parentRefs: [{name: aigw-e2e, kind: Gateway, group: gateway.networking.k8s.io}]
  path: /mcp
  backendRefs:
    - {name: alpha, kind: Backend, group: gateway.envoyproxy.io, path: /mcp}
    - {name: beta, kind: Backend, group: gateway.envoyproxy.io, path: /mcp}
    - {name: gamma, kind: Backend, group: gateway.envoyproxy.io, path: /mcp}
${backend('alpha', alphaPort)}${backend('beta', betaPort)}${backend('gamma', gammaPort)}`;
}

const sessionHash = (id) => createHash('sha256').update(id).digest('hex').slice(0, 16);

let alpha, beta, gw;

before(async () => {
  alpha = await startAlpha();
  beta = await startBeta();
  const gammaPort = await closedPort(); // initialize fails: left out of the session
  const port = await freePort();
  gw = await startGateway({ port, config: yaml(port, alpha.port, beta.port, gammaPort) });
});

after(async () => {
  await gw?.close();
  for (const b of [alpha, beta]) {
    b?.srv.close();
    b?.srv.closeAllConnections?.();
  }
});

test('MCP metrics and access-log fields for a session: initialize, list, calls, a failing call, progress', async () => {
  // Every JSON-RPC message the SDK POSTs, as sent.
  const posted = [];
  const recordingFetch = async (url, init = {}) => {
    if ((init.method || 'GET') === 'POST' && typeof init.body === 'string') {
      const m = JSON.parse(init.body);
      for (const one of Array.isArray(m) ? m : [m]) posted.push(one);
    }
    return fetch(url, init);
  };
  const client = new Client({ name: 'obs-e2e', version: '1.0.0' },
    { capabilities: { sampling: {}, roots: { listChanged: true }, experimental: { a: {}, b: {} } } });
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { fetch: recordingFetch });
  await client.connect(transport);
  const sid = transport.sessionId;
  assert.ok(sid && sid.length > 16, 'a session id was issued');

  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(tools, ['alpha__count', 'alpha__echo', 'beta__add']);
  const echo = await client.callTool({ name: 'alpha__echo', arguments: { text: 'hi' } });
  assert.equal(echo.content[0].text, 'hi');
  const sum = await client.callTool({ name: 'beta__add', arguments: { a: 2, b: 3 } });
  assert.equal(sum.content[0].text, '5');
  await assert.rejects(client.callTool({ name: 'nosuch__tool', arguments: {} }), (e) => e.code === -32602);
  const progress = [];
  const counted = await client.callTool({ name: 'alpha__count', arguments: { n: 3 } }, undefined,
    { onprogress: (p) => progress.push(p.progress) });
  assert.equal(counted.content[0].text, 'counted to 3');
  assert.deepEqual(progress, [1, 2, 3]);

  // Raw messages for the error types the SDK never provokes, and a client-sent progress.
  const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  const unknownMethod = await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: 'u1', method: 'tasks/list', params: {} }, h);
  assert.equal(unknownMethod.json.error.code, -32601);
  const clientProgress = await rawPost(`${gw.url}/mcp`,
    { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'tok-1', progress: 1 } }, h);
  assert.equal(clientProgress.status, 202);
  const notJson = await rawPost(`${gw.url}/mcp`, '{"jsonrpc":"2.0",', h);
  assert.equal(notJson.status, 400);
  const badSession = await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: 9, method: 'ping' },
    { ...h, 'mcp-session-id': 'not-a-session' });
  assert.equal(badSession.status, 404);
  const badVersion = await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: 10, method: 'ping' },
    { ...h, 'mcp-protocol-version': '1999-01-01' });
  assert.equal(badVersion.status, 400);

  await client.close();

  // ---- metrics ----
  const s = parseProm(await gw.metricsText());
  const count = (method, status) => total(s, 'mcp_method_count_total', { mcp_method_name: method, status });
  const sdkMethods = posted.filter((m) => m.method).map((m) => m.method);
  const sdkCount = (m) => sdkMethods.filter((x) => x === m).length;
  assert.equal(sdkCount('initialize'), 1);
  assert.equal(sdkCount('tools/call'), 4);

  // successes: every message the SDK POSTed except the unknown tool, plus the client's progress
  assert.equal(count('initialize', 'success'), 1);
  assert.equal(count('notifications/initialized', 'success'), sdkCount('notifications/initialized'));
  assert.equal(count('tools/list', 'success'), sdkCount('tools/list'));
  assert.equal(count('tools/call', 'success'), 3);
  assert.equal(count('tools/call', 'error'), 1);
  assert.equal(count('notifications/progress', 'success'), 1);
  assert.equal(count('tasks/list', 'error'), 1);
  assert.equal(count('ping', 'error'), 2); // unknown session, unsupported protocol version
  assert.equal(count('ping', 'success'), 0);
  // the unparsable body: an error without a method
  const unnamed = select(s, 'mcp_method_count_total', { status: 'error' }).filter((x) => !('mcp_method_name' in x.labels));
  assert.equal(unnamed.length, 1);
  assert.equal(unnamed[0].value, 1);

  const okMessages = sdkMethods.length - 1 /* unknown tool */ + 1 /* client progress */;
  const dur = (labels) => select(s, 'mcp_request_duration_seconds_count').filter((x) =>
    (labels.error_type ?? null) === (x.labels.error_type ?? null));
  const okDur = dur({});
  assert.equal(okDur.length, 1, 'one success series without error_type');
  assert.equal(okDur[0].value, okMessages);
  for (const [type, n] of [['invalid_param', 1], ['unsupported_method', 1], ['invalid_json_rpc', 1],
    ['invalid_session_id', 1], ['unsupported_protocol_version', 1]]) {
    assert.equal(total(s, 'mcp_request_duration_seconds_count', { error_type: type }), n, type);
  }
  assert.equal(total(s, 'mcp_request_duration_seconds_count', { error_type: 'internal_error' }), 0);
  // timed to the end of the stream: the progress call alone lasts 3 gaps
  const okSum = select(s, 'mcp_request_duration_seconds_sum').find((x) => !('error_type' in x.labels));
  assert.ok(okSum.value >= (3 * PROGRESS_GAP_MS) / 1000, `success duration sum ${okSum.value}`);
  const okFast = select(s, 'mcp_request_duration_seconds_bucket', { le: '0.1' }).find((x) => !('error_type' in x.labels));
  assert.ok(okFast.value < okMessages, 'the progress call is above 0.1 s');

  // two backends initialized (gamma failed): one sample each, alpha's slow one above 0.1 s
  assert.equal(total(s, 'mcp_initialization_duration_seconds_count'), 2);
  assert.ok(total(s, 'mcp_initialization_duration_seconds_sum') >= SLOW_INIT_MS / 1000);
  assert.equal(total(s, 'mcp_initialization_duration_seconds_bucket', { le: '0.1' }) <= 1, true);
  assert.equal(total(s, 'mcp_initialization_duration_seconds_bucket', { le: '+Inf' }), 2);

  // capabilities: the client's as it sent them, the server's as the gateway answered them
  const init = posted.find((m) => m.method === 'initialize');
  const clientCaps = init.params.capabilities;
  const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  for (const type of ['elicitation', 'roots', 'sampling', 'tasks']) {
    assert.equal(total(s, 'mcp_capabilities_negotiated_total', { capability_side: 'client', capability_type: type }),
      isObj(clientCaps[type]) ? 1 : 0, `client ${type}`);
  }
  assert.equal(total(s, 'mcp_capabilities_negotiated_total', { capability_side: 'client', capability_type: 'sampling' }), 1);
  assert.equal(total(s, 'mcp_capabilities_negotiated_total', { capability_side: 'client', capability_type: 'experimental' }), 2);
  const serverCaps = client.getServerCapabilities();
  for (const type of ['completions', 'logging', 'prompts', 'resources', 'tasks', 'tools']) {
    assert.equal(total(s, 'mcp_capabilities_negotiated_total', { capability_side: 'server', capability_type: type }),
      isObj(serverCaps[type]) ? 1 : 0, `server ${type}`);
  }
  assert.equal(total(s, 'mcp_capabilities_negotiated_total', { capability_side: 'server', capability_type: 'tools' }), 1);
  assert.equal(total(s, 'mcp_capabilities_negotiated_total', { capability_side: 'server', capability_type: 'logging' }), 1);

  // three relayed from alpha's stream, one the client POSTed
  assert.equal(total(s, 'mcp_progress_notifications_total'), 4);

  // ---- access log ----
  await gw.settleLogs();
  const lines = gw.logs.filter((l) => l['x-envoy-origin-path'] === '/mcp');
  const raw = JSON.stringify(gw.logs);
  assert.ok(!raw.includes(sid), 'the raw session id appears in the access log');
  const hash = sessionHash(sid);
  const byMethod = (m) => lines.filter((l) => l.mcp_method === m);

  const initLine = byMethod('initialize');
  assert.equal(initLine.length, 1);
  assert.equal(initLine[0].mcp_session_id, hash, 'initialize: the hash of the id just issued');
  assert.equal(initLine[0].mcp_request_id, String(init.id));
  assert.ok(!('mcp_backend' in initLine[0]), 'initialize goes to every backend');

  const calls = posted.filter((m) => m.method === 'tools/call');
  const callLines = byMethod('tools/call');
  assert.equal(callLines.length, 4);
  for (const c of calls) {
    const line = callLines.find((l) => l.mcp_request_id === String(c.id));
    assert.ok(line, `a line for tools/call id ${c.id}`);
    assert.equal(line.mcp_session_id, hash);
    const want = c.params.name.startsWith('alpha__') ? 'alpha' : c.params.name.startsWith('beta__') ? 'beta' : undefined;
    assert.equal(line.mcp_backend, want, `backend of ${c.params.name}`);
  }
  const listLine = byMethod('tools/list');
  assert.equal(listLine.length, sdkCount('tools/list'));
  assert.ok(!('mcp_backend' in listLine[0]), 'a fanned-out list has no backend');
  const unknownLine = byMethod('tasks/list');
  assert.equal(unknownLine.length, 1);
  assert.equal(unknownLine[0].mcp_request_id, 'u1');
  const badLine = lines.find((l) => l.mcp_method === 'ping' && l.response_code === 404);
  assert.equal(badLine.mcp_session_id, sessionHash('not-a-session'));
  for (const l of lines) {
    if ('mcp_session_id' in l) {
      assert.match(l.mcp_session_id, /^[0-9a-f]{16}$/);
      assert.ok(!sid.includes(l.mcp_session_id) && l.mcp_session_id !== sid);
    }
  }
  // one line per request: every POSTed message has exactly one line with its method
  assert.equal(lines.filter((l) => l.method === 'POST').length, posted.length + 5);
});

test('batch members are counted one by one; the batch has one access-log line', async () => {
  const init = await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  assert.equal(init.status, 200);
  const sid = init.headers.get('mcp-session-id');
  const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-03-26' };
  const before = parseProm(await gw.metricsText());
  const r = await rawPost(`${gw.url}/mcp`, [
    { jsonrpc: '2.0', id: 'b1', method: 'ping' },
    { jsonrpc: '2.0', id: 'b2', method: 'tools/call', params: { name: 'nosuch__x', arguments: {} } },
    { jsonrpc: '2.0', id: 'b3', method: 'tools/call', params: { name: 'beta__add', arguments: { a: 1, b: 1 } } },
    { nonsense: true },
  ], h);
  assert.equal(r.status, 200);
  assert.equal(r.json.length, 4);
  const after = parseProm(await gw.metricsText());
  const delta = (name, labels) => total(after, name, labels) - total(before, name, labels);
  assert.equal(delta('mcp_method_count_total', { mcp_method_name: 'ping', status: 'success' }), 1);
  assert.equal(delta('mcp_method_count_total', { mcp_method_name: 'tools/call', status: 'error' }), 1);
  assert.equal(delta('mcp_method_count_total', { mcp_method_name: 'tools/call', status: 'success' }), 1);
  assert.equal(delta('mcp_request_duration_seconds_count', { error_type: 'invalid_json_rpc' }), 1);
  assert.equal(delta('mcp_request_duration_seconds_count', { error_type: 'invalid_param' }), 1);

  await gw.settleLogs();
  const lines = gw.logs.filter((l) => l['x-envoy-origin-path'] === '/mcp' && l.mcp_session_id === sessionHash(sid));
  const batchLines = lines.filter((l) => !('mcp_method' in l));
  assert.equal(batchLines.length, 1, 'one line for the batch, without a method');
  assert.equal(batchLines[0].response_code, 200);
  assert.ok(!JSON.stringify(gw.logs).includes(sid));
});

shutdownTest(() => [gw]);
