// End-to-end: the MCP gateway (MCPRoute at /mcp) in front of two MCP servers written here with the
// official SDK (one stateful answering with SSE, one stateless answering with JSON), driven by the
// SDK's own Client over Streamable HTTP. Covers initialize aggregation, prefixed names, routed
// calls, prompts, resources and templates, tool filtering, JSON-RPC errors, progress streamed in
// order, transport checks, sealed sessions (tampered -> 404, DELETE -> 404) and --mcp-json.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';

import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  isInitializeRequest, CreateMessageRequestSchema, CreateMessageResultSchema, ResourceListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

import fs from 'node:fs';
import path from 'node:path';

import { startGateway, freePort, closedPort, runAigw, tmpDir, T } from './lib/gateway.mjs';
import { assertNoSanitizerReport } from './lib/common.mjs';
import { rawPost, messagesOf } from './lib/mcp_util.mjs';

const WEATHER_KEY = 'weather-key-e2e-7d1c';

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// A small event store (the SDK's example store cannot replay the standalone GET stream: it takes
// the stream id from the text before the first '_', and that stream's id starts with '_').
class EventStore {
  constructor() { this.events = []; this.n = 0; }
  async storeEvent(streamId, message) {
    const eventId = `ev${++this.n}`;
    this.events.push({ eventId, streamId, message });
    return eventId;
  }
  async replayEventsAfter(lastEventId, { send }) {
    const i = this.events.findIndex((e) => e.eventId === lastEventId);
    if (i < 0) return '';
    const { streamId } = this.events[i];
    for (const e of this.events.slice(i + 1)) if (e.streamId === streamId) await send(e.eventId, e.message);
    return streamId;
  }
}

function weatherServer(extend) {
  const s = new McpServer({ name: 'weather', version: '1.0.0' },
    { instructions: 'Weather: ask for forecasts.', capabilities: { logging: {} } });
  s.registerTool('get_forecast', { description: 'forecast', inputSchema: { city: z.string() } },
    async ({ city }) => ({ content: [{ type: 'text', text: `Sunny in ${city}` }] }));
  s.registerTool('slow_count', { description: 'counts with progress', inputSchema: { n: z.number() } },
    async ({ n }, extra) => {
      const token = extra._meta?.progressToken;
      for (let i = 1; i <= n; i++) {
        if (token !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: n } });
        }
        await new Promise((r) => setTimeout(r, 30));
      }
      return { content: [{ type: 'text', text: `counted to ${n}` }] };
    });
  s.registerTool('ask_client', { description: 'asks the client to sample' },
    async (extra) => {
      const progress = [];
      const r = await extra.sendRequest({ method: 'sampling/createMessage',
        params: { messages: [{ role: 'user', content: { type: 'text', text: 'meaning?' } }], maxTokens: 5 } },
      CreateMessageResultSchema, { onprogress: (p) => progress.push(p.progress) });
      return { content: [{ type: 'text', text: `client said ${r.content.text}; progress ${progress.join(',')}` }] };
    });
  s.registerTool('announce', { description: 'changes the resource list a moment after answering' },
    async () => {
      setTimeout(() => s.sendResourceListChanged(), 50);
      return { content: [{ type: 'text', text: 'ok' }] };
    });
  s.registerTool('secret_tool', { description: 'filtered out by the route' },
    async () => ({ content: [{ type: 'text', text: 'should never run' }] }));
  s.registerPrompt('greeting', { description: 'greets',
    argsSchema: { name: completable(z.string(), (v) => ['Ada', 'Alan', 'Grace'].filter((n) => n.startsWith(v))) } },
    ({ name }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Hello, ${name}!` } }] }));
  s.registerResource('cities', 'weather://cities', { mimeType: 'text/plain' },
    async (uri) => ({ contents: [{ uri: uri.href, text: 'Paris,Oslo' }] }));
  s.registerResource('city', new ResourceTemplate('weather://city/{name}', { list: undefined }), {},
    async (uri, { name }) => ({ contents: [{ uri: uri.href, text: `city ${name}` }] }));
  extend?.(s);
  return s;
}

function notesServer(extend) {
  const s = new McpServer({ name: 'notes', version: '1.0.0' }, { instructions: 'Notes: keep notes.' });
  s.registerTool('add_note', { description: 'adds', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text: `noted: ${text}` }] }));
  s.registerTool('echo', { description: 'filtered by the regex', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }));
  s.registerPrompt('summarize', { description: 'summarizes' },
    () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'Summarize the notes.' } }] }));
  s.registerResource('all', 'notes://all', { mimeType: 'text/plain' },
    async (uri) => ({ contents: [{ uri: uri.href, text: 'note one' }] }));
  extend?.(s);
  return s;
}

// A tool, a prompt and a resource template whose results hand out resource URIs of the server.
function addLinks(s, scheme) {
  s.registerResource('doc', new ResourceTemplate(`${scheme}://doc/{n}`, { list: undefined }), {},
    async (uri, { n }) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: `${scheme} doc ${n}` }] }));
  s.registerTool('links', { description: 'hands out resource URIs', outputSchema: { see: z.string() } },
    async () => ({
      content: [
        { type: 'text', text: `see ${scheme}://doc/1` },
        { type: 'resource_link', uri: `${scheme}://doc/1`, name: 'doc 1', mimeType: 'text/plain' },
        { type: 'resource', resource: { uri: `${scheme}://doc/2`, mimeType: 'text/plain', text: `${scheme} doc 2` } },
      ],
      structuredContent: { see: `${scheme}://doc/1` },
    }));
  s.registerPrompt('cite', { description: 'cites documents' }, () => ({ messages: [
    { role: 'user', content: { type: 'resource', resource: { uri: `${scheme}://doc/3`, mimeType: 'text/plain', text: 'three' } } },
    { role: 'user', content: { type: 'resource_link', uri: `${scheme}://doc/4`, name: 'doc 4' } },
    { role: 'user', content: { type: 'text', text: `about ${scheme}://doc/3` } },
  ] }));
}

// Stateful server: one transport per session, 404 for unknown sessions, the API key required.
function startWeather({ extend } = {}) {
  const transports = new Map();
  const seen = { deletes: 0, gets: 0, openGets: 0, lastEventIds: [], keys: new Set() };
  const srv = http.createServer(async (req, res) => {
    seen.keys.add(req.headers['x-api-key']);
    if (req.headers['x-api-key'] !== WEATHER_KEY) {
      res.writeHead(401).end();
      return;
    }
    const body = req.method === 'POST' ? JSON.parse(await readBody(req)) : undefined;
    const sid = req.headers['mcp-session-id'];
    if (req.method === 'DELETE') seen.deletes++;
    if (req.method === 'GET') {
      seen.gets++;
      seen.openGets++;
      res.on('close', () => seen.openGets--);
      if (req.headers['last-event-id']) seen.lastEventIds.push(req.headers['last-event-id']);
    }
    if (req.method === 'POST' && seen.onPost) seen.onPost(req, res);
    if (sid && transports.has(sid)) {
      await transports.get(sid).handleRequest(req, res, body);
      return;
    }
    if (!sid && req.method === 'POST' && isInitializeRequest(body)) {
      const t = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new EventStore(), // resumable streams, priming events for 2025-11-25
        onsessioninitialized: (id) => transports.set(id, t),
      });
      t.onclose = () => { if (t.sessionId) transports.delete(t.sessionId); };
      await weatherServer(extend).connect(t);
      await t.handleRequest(req, res, body);
      return;
    }
    res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' })
      .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, port: srv.address().port, seen })));
}

// Stateless server answering with plain JSON; GET is 405.
function startNotes({ extend } = {}) {
  const seen = { gets: 0 };
  const srv = http.createServer(async (req, res) => {
    if (req.method === 'GET') seen.gets++;
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const body = JSON.parse(await readBody(req));
    const s = notesServer(extend);
    const t = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => { t.close(); s.close(); });
    await s.connect(t);
    await t.handleRequest(req, res, body);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, port: srv.address().port, seen })));
}

// A hand-written stateless server with the quirks gateways trip over: SSE framing under
// Content-Type: application/json with an empty-data priming event, paginated lists, a duplicate.
function startQuirky() {
  const seen = { cursors: [] };
  const tool = (name) => ({ name, inputSchema: { type: 'object' } });
  const srv = http.createServer(async (req, res) => {
    if (req.method !== 'POST') {
      setTimeout(() => res.writeHead(405).end(), seen.getDelayMs ?? 0); // a slow "no stream"
      return;
    }
    const msg = JSON.parse(await readBody(req));
    if (msg.id === undefined) {
      res.writeHead(202).end();
      return;
    }
    let result;
    if (msg.method === 'initialize') {
      result = { protocolVersion: '2025-06-18', capabilities: { tools: {}, logging: {} }, serverInfo: { name: 'q', version: '1' } };
    } else if (msg.method === 'tools/list') {
      seen.cursors.push(msg.params?.cursor ?? null);
      result = msg.params?.cursor === 'p2' ? { tools: [tool('b'), tool('c')] } : { tools: [tool('a'), tool('b')], nextCursor: 'p2' };
    } else if (msg.method === 'tools/call' && msg.params.name === 'cut') {
      // a stream cut after one notification, before the answer
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message',
        params: { level: 'info', data: 'working' } })}\n\n`);
      setTimeout(() => res.socket.destroy(), 20);
      return;
    } else if (msg.method === 'tools/call' && msg.params.name === 'boom') {
      res.writeHead(500, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32050, message: 'boom inside' } }));
      return;
    } else if (msg.method === 'tools/call') {
      result = { content: [{ type: 'text', text: `q:${msg.params.name}` }] };
    } else {
      res.writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'nope' } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`id: 0\ndata: \n\nevent: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result })}\n\n`);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, port: srv.address().port, seen })));
}

function yaml(port, weatherPort, notesPort) {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: aigw-e2e, namespace: default}
spec:
  gatewayClassName: aigw-e2e
  listeners: [{name: http, protocol: HTTP, port: ${port}}]
---
apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: MCPRoute
metadata: {name: mcp-route, namespace: default}
spec:
  parentRefs: [{name: aigw-e2e, kind: Gateway, group: gateway.networking.k8s.io}]
  path: /mcp
  backendRefs:
    - name: weather
      kind: Backend
      group: gateway.envoyproxy.io
      path: /mcp
      toolSelector: {include: [get_forecast, slow_count, ask_client, announce]}
      securityPolicy: {apiKey: {inline: ${WEATHER_KEY}, header: X-Api-Key}}
    - name: notes
      kind: Backend
      group: gateway.envoyproxy.io
      path: /mcp
      toolSelector: {includeRegex: ["^add_"]}
---
apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: MCPRoute
metadata: {name: team, namespace: default}
spec:
  parentRefs: [{name: aigw-e2e, kind: Gateway, group: gateway.networking.k8s.io}]
  path: /team/mcp
  headers: [{name: X-Team, value: blue}]
  backendRefs:
    - name: notes
      kind: Backend
      group: gateway.envoyproxy.io
      path: /mcp
---
apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: MCPRoute
metadata: {name: locked, namespace: default}
spec:
  parentRefs: [{name: aigw-e2e, kind: Gateway, group: gateway.networking.k8s.io}]
  path: /locked/mcp
  backendRefs:
    - name: notes
      kind: Backend
      group: gateway.envoyproxy.io
      path: /mcp
  securityPolicy:
    apiKeyAuth:
      credentialRefs: [{name: mcp-clients}]
      extractFrom: [{headers: [X-Client-Key]}]
---
apiVersion: v1
kind: Secret
metadata: {name: mcp-clients, namespace: default}
stringData: {client-a: key-a-0123456789}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: weather, namespace: default}
spec: {endpoints: [{ip: {address: 127.0.0.1, port: ${weatherPort}}}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: notes, namespace: default}
spec: {endpoints: [{ip: {address: 127.0.0.1, port: ${notesPort}}}]}
`;
}

let weather, notes, gw;

before(async () => {
  weather = await startWeather();
  notes = await startNotes();
  const port = await freePort();
  gw = await startGateway({ port, config: yaml(port, weather.port, notes.port), env: { AIGW_MCP_HEARTBEAT_MS: '200' } });
});

after(async () => {
  await gw?.close();
  weather?.srv.close();
  notes?.srv.close();
  weather?.srv.closeAllConnections?.();
  notes?.srv.closeAllConnections?.();
});

async function connect(url = `${gw.url}/mcp`) {
  const client = new Client({ name: 'e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, transport };
}

// A raw POST on the gateway's endpoint, for what the SDK would never send.
async function post(body, headers = {}) {
  const res = await fetch(`${gw.url}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

test('initialize aggregates both servers: gateway serverInfo, merged capabilities, instructions', async () => {
  const { client, transport } = await connect();
  assert.equal(client.getServerVersion().name, 'aigw');
  const caps = client.getServerCapabilities();
  assert.ok(caps.tools && caps.prompts && caps.resources, JSON.stringify(caps));
  const ins = client.getInstructions();
  assert.match(ins, /Weather: ask for forecasts\./);
  assert.match(ins, /Notes: keep notes\./);
  assert.match(transport.sessionId, /^[A-Za-z0-9_-]+$/);
  assert.ok(weather.seen.keys.has(WEATHER_KEY));
  await client.close();
});

test('tools/list: prefixed names, filtered by include and includeRegex', async () => {
  const { client } = await connect();
  const names = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(names, ['notes__add_note', 'weather__announce', 'weather__ask_client', 'weather__get_forecast',
    'weather__slow_count']);
  await client.close();
});

test('tools/call is routed by prefix, result intact; JSON and SSE backends', async () => {
  const { client } = await connect();
  const a = await client.callTool({ name: 'weather__get_forecast', arguments: { city: 'Paris' } });
  assert.deepEqual(a.content, [{ type: 'text', text: 'Sunny in Paris' }]);
  const b = await client.callTool({ name: 'notes__add_note', arguments: { text: 'milk' } });
  assert.deepEqual(b.content, [{ type: 'text', text: 'noted: milk' }]);
  await client.close();
});

test('filtered or unknown tools are JSON-RPC -32602; unknown method -32601', async () => {
  const { client, transport } = await connect();
  for (const name of ['weather__secret_tool', 'notes__echo', 'nosuch__tool', 'get_forecast']) {
    await assert.rejects(client.callTool({ name, arguments: {} }), (e) => e.code === -32602, name);
  }
  const r = await post({ jsonrpc: '2.0', id: 'x1', method: 'tasks/list', params: {} },
    { 'mcp-session-id': transport.sessionId, 'mcp-protocol-version': '2025-11-25' });
  assert.equal(r.status, 200);
  assert.equal(r.json.id, 'x1');
  assert.equal(r.json.error.code, -32601);
  const p = await post({ jsonrpc: '2.0', id: 7, method: 'ping' }, { 'mcp-session-id': transport.sessionId });
  assert.deepEqual(p.json, { jsonrpc: '2.0', id: 7, result: {} });
  await client.close();
});

test('prompts: list prefixed, get routed', async () => {
  const { client } = await connect();
  const names = (await client.listPrompts()).prompts.map((p) => p.name).sort();
  assert.deepEqual(names, ['notes__summarize', 'weather__greeting']);
  const g = await client.getPrompt({ name: 'weather__greeting', arguments: { name: 'Ada' } });
  assert.equal(g.messages[0].content.text, 'Hello, Ada!');
  await assert.rejects(client.getPrompt({ name: 'weather__nope' }), (e) => e.code !== undefined);
  await client.close();
});

test('completion/complete is routed by ref.name; logging/setLevel fans out', async () => {
  const { client } = await connect();
  assert.ok(client.getServerCapabilities().completions, 'completions in the merged capabilities');
  const c = await client.complete({ ref: { type: 'ref/prompt', name: 'weather__greeting' },
    argument: { name: 'name', value: 'A' } });
  assert.deepEqual(c.completion.values, ['Ada', 'Alan']);
  await assert.rejects(client.complete({ ref: { type: 'ref/prompt', name: 'nosuch__p' }, argument: { name: 'x', value: '' } }),
    (e) => e.code === -32602);
  // notes has no logging capability and refuses; the gateway still answers {}.
  assert.deepEqual(await client.setLoggingLevel('debug'), {});
  await client.close();
});

test('resources and templates: URIs prefixed with "<backend>+", templates still match', async () => {
  const { client } = await connect();
  const uris = (await client.listResources()).resources.map((r) => r.uri).sort();
  assert.deepEqual(uris, ['notes+notes://all', 'weather+weather://cities']);
  const tpl = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
  assert.deepEqual(tpl, ['weather+weather://city/{name}']);
  const r1 = await client.readResource({ uri: 'weather+weather://cities' });
  assert.equal(r1.contents[0].text, 'Paris,Oslo');
  const r2 = await client.readResource({ uri: 'weather+weather://city/Oslo' });
  assert.equal(r2.contents[0].text, 'city Oslo');
  const r3 = await client.readResource({ uri: 'notes+notes://all' });
  assert.equal(r3.contents[0].text, 'note one');
  await client.close();
});

test('resource URIs in results (tools/call content, prompts/get, resources/read) are prefixed and read back through the gateway; SSE and JSON answers', { timeout: T(20_000) }, async () => {
  const w = await startWeather({ extend: (s) => addLinks(s, 'weather') }); // answers with SSE
  const n = await startNotes({ extend: (s) => addLinks(s, 'notes') });     // answers with JSON
  const both = await startGateway({ args: ['--mcp-json', JSON.stringify({ mcpServers: {
    weather: { url: `http://127.0.0.1:${w.port}/mcp`, headers: { 'X-Api-Key': WEATHER_KEY } },
    notes: { url: `http://127.0.0.1:${n.port}/mcp` } } })] });
  const one = await startGateway({ args: ['--mcp-json', JSON.stringify({ mcpServers: {
    notes: { url: `http://127.0.0.1:${n.port}/mcp` } } })] });
  const call = { jsonrpc: '2.0', id: 77, method: 'tools/call', params: { name: 'links', arguments: {} } };
  try {
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${both.url}/mcp`));
    await client.connect(transport);
    const hdr = { 'mcp-session-id': transport.sessionId, 'mcp-protocol-version': '2025-11-25' };
    for (const [b, ctype] of [['weather', 'text/event-stream'], ['notes', 'application/json']]) {
      const r = await client.callTool({ name: `${b}__links`, arguments: {} });
      assert.deepEqual(r.content, [
        { type: 'text', text: `see ${b}://doc/1` },
        { type: 'resource_link', uri: `${b}+${b}://doc/1`, name: 'doc 1', mimeType: 'text/plain' },
        { type: 'resource', resource: { uri: `${b}+${b}://doc/2`, mimeType: 'text/plain', text: `${b} doc 2` } },
      ]);
      assert.deepEqual(r.structuredContent, { see: `${b}://doc/1` }, 'structuredContent is the tool\'s own data, untouched');
      // the link and the embedded resource read back through the gateway, with the URIs the client knows
      const r1 = await client.readResource({ uri: r.content[1].uri });
      assert.deepEqual(r1.contents, [{ uri: `${b}+${b}://doc/1`, mimeType: 'text/plain', text: `${b} doc 1` }]);
      const r2 = await client.readResource({ uri: r.content[2].resource.uri });
      assert.deepEqual(r2.contents, [{ uri: `${b}+${b}://doc/2`, mimeType: 'text/plain', text: `${b} doc 2` }]);
      const p = await client.getPrompt({ name: `${b}__cite` });
      assert.equal(p.messages[0].content.resource.uri, `${b}+${b}://doc/3`);
      assert.equal(p.messages[1].content.uri, `${b}+${b}://doc/4`);
      assert.equal(p.messages[2].content.text, `about ${b}://doc/3`);
      // the same call raw: the backend's framing is kept, the answer carries the prefixed URIs
      const raw = await rawPost(`${both.url}/mcp`, { ...call, params: { ...call.params, name: `${b}__links` } }, hdr);
      assert.equal(raw.status, 200);
      assert.equal(raw.headers.get('content-type'), ctype);
      const res = messagesOf(raw.text).find((m) => m.id === 77);
      assert.deepEqual(res.result.content.slice(1).map((c) => c.uri ?? c.resource.uri), [`${b}+${b}://doc/1`, `${b}+${b}://doc/2`]);
    }
    // every other byte of a JSON answer is the backend's: only the URI strings grew a prefix
    const direct = await rawPost(`http://127.0.0.1:${n.port}/mcp`, call, { 'mcp-protocol-version': '2025-11-25' });
    assert.match(direct.text, /"uri":"notes:\/\/doc\/1"/);
    const via = await rawPost(`${both.url}/mcp`, { ...call, params: { ...call.params, name: 'notes__links' } }, hdr);
    assert.equal(via.text, direct.text.replaceAll('"uri":"notes://', '"uri":"notes+notes://'));
    await client.close();

    // a single-backend route exposes the backend's own URIs: its answers are left as they are
    const c1 = new Client({ name: 'e2e', version: '1.0.0' });
    const t1 = new StreamableHTTPClientTransport(new URL(`${one.url}/mcp`));
    await c1.connect(t1);
    const r = await c1.callTool({ name: 'links', arguments: {} });
    assert.equal(r.content[1].uri, 'notes://doc/1');
    assert.equal(r.content[2].resource.uri, 'notes://doc/2');
    assert.equal((await c1.readResource({ uri: 'notes://doc/1' })).contents[0].uri, 'notes://doc/1');
    assert.equal((await c1.getPrompt({ name: 'cite' })).messages[1].content.uri, 'notes://doc/4');
    const plain = await rawPost(`${one.url}/mcp`, call, { 'mcp-session-id': t1.sessionId, 'mcp-protocol-version': '2025-11-25' });
    assert.equal(plain.text, direct.text);
    await c1.close();
  } finally {
    for (const g of [both, one]) {
      const ex = await g.stop({ timeoutMs: T(10_000) });
      assert.equal(ex.code, 0);
      assertNoSanitizerReport(g);
    }
    for (const s of [w, n]) { s.srv.close(); s.srv.closeAllConnections?.(); }
  }
});

test('progress notifications are streamed in order before the result', async () => {
  const { client } = await connect();
  const seen = [];
  const res = await client.callTool({ name: 'weather__slow_count', arguments: { n: 4 } }, undefined,
    { onprogress: (p) => seen.push(p.progress) });
  assert.deepEqual(seen, [1, 2, 3, 4]);
  assert.equal(res.content[0].text, 'counted to 4');
  await client.close();
});

test('server-to-client requests: sampling reaches the client with a rewritten id and the answer reaches the backend', async () => {
  const client = new Client({ name: 'e2e', version: '1.0.0' }, { capabilities: { sampling: {} } });
  const ids = [];
  const tokens = [];
  client.setRequestHandler(CreateMessageRequestSchema, async (req, extra) => {
    ids.push(extra.requestId);
    assert.equal(req.params.messages[0].content.text, 'meaning?');
    // Progress on the backend's request: the gateway wrapped the token; its answer (202) comes
    // once the backend has the notification.
    const token = req.params._meta?.progressToken;
    tokens.push(token);
    await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 1 } });
    return { model: 'm', role: 'assistant', content: { type: 'text', text: '42' } };
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`)));
  const r = await client.callTool({ name: 'weather__ask_client', arguments: {} });
  assert.equal(r.content[0].text, 'client said 42; progress 1');
  assert.match(String(tokens[0]), /^weather__\d+$/);
  // The id the client saw names the backend and carries the backend's own id.
  assert.equal(ids.length, 1);
  assert.match(String(ids[0]), /^weather__\d+$/);
  await client.close();
});

async function until(cond, ms = T(3000)) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

test('GET stream: a backend notification reaches the client; a 405 backend is asked once; heartbeats', async () => {
  const wGets = weather.seen.gets, nGets = notes.seen.gets;
  const client = new Client({ name: 'e2e', version: '1.0.0' });
  let changed = 0;
  client.setNotificationHandler(ResourceListChangedNotificationSchema, () => { changed++; });
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`));
  await client.connect(transport);
  // The SDK client opens its GET stream after initialize; the gateway opens one per backend.
  assert.ok(await until(() => weather.seen.gets === wGets + 1 && notes.seen.gets === nGets + 1));
  await new Promise((r) => setTimeout(r, 100));
  await client.callTool({ name: 'weather__announce', arguments: {} });
  assert.ok(await until(() => changed === 1), 'resources/list_changed arrived on the GET stream');
  // The stateless backend's 405 is not retried while the stream lives (heartbeats every 200 ms).
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(notes.seen.gets, nGets + 1);
  assert.equal(weather.seen.gets, wGets + 1);

  // A raw GET shows the heartbeat comments.
  const ac = new AbortController();
  const res = await fetch(`${gw.url}/mcp`, { signal: ac.signal,
    headers: { accept: 'text/event-stream', 'mcp-session-id': transport.sessionId, 'mcp-protocol-version': '2025-11-25' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const reader = res.body.getReader();
  let text = '';
  const dec = new TextDecoder();
  while (!text.includes(': keepalive')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  assert.match(text, /: keepalive\n\n/);
  ac.abort();
  await client.close();
});

// Reads SSE from a fetch body until an event's data matches re; returns { id, data } of that event.
async function readEvent(reader, state, re) {
  const dec = new TextDecoder();
  for (;;) {
    let k;
    while ((k = state.buf.indexOf('\n\n')) >= 0) {
      const block = state.buf.slice(0, k);
      state.buf = state.buf.slice(k + 2);
      let id = null, data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) id = line.slice(4);
        if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (id !== null) state.id = id;
      if (re.test(data)) return { id: state.id, data };
    }
    const { value, done } = await reader.read();
    if (done) throw new Error('stream ended');
    state.buf += dec.decode(value, { stream: true });
  }
}

test('GET stream resumption: composite Last-Event-ID resumes each backend where it was', { timeout: T(15_000) }, async () => {
  const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  const sid = init.headers.get('mcp-session-id');
  const hdr = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  assert.equal((await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, hdr)).status, 202);
  const announce = () => post({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'weather__announce', arguments: {} } }, hdr);

  const open0 = weather.seen.openGets;
  const acA = new AbortController();
  const a = await fetch(`${gw.url}/mcp`, { signal: acA.signal, headers: { ...base, accept: 'text/event-stream', ...hdr } });
  assert.equal(a.status, 200);
  const ra = a.body.getReader();
  const stA = { buf: '', id: null };
  assert.ok(await until(() => weather.seen.openGets === open0 + 1));
  const called = await announce();
  assert.match(called.text, /"id":5/);
  const ev1 = await readEvent(ra, stA, /list_changed/);
  assert.match(ev1.id, /^weather:[A-Za-z0-9_-]+$/);
  acA.abort();
  assert.ok(await until(() => weather.seen.openGets === open0), 'the backend GET ends with the client stream');

  await announce(); // stored by the backend while nobody listens
  await new Promise((r) => setTimeout(r, 150)); // the notification goes out 50 ms after the answer
  const acB = new AbortController();
  const b = await fetch(`${gw.url}/mcp`, { signal: acB.signal,
    headers: { ...base, accept: 'text/event-stream', ...hdr, 'last-event-id': ev1.id } });
  assert.equal(b.status, 200);
  const stB = { buf: '', id: null };
  const ev2 = await readEvent(b.body.getReader(), stB, /list_changed/);
  assert.notEqual(ev2.id, ev1.id);
  const backendId = Buffer.from(ev1.id.slice('weather:'.length), 'base64url').toString();
  assert.equal(weather.seen.lastEventIds.at(-1), backendId);
  acB.abort();
});

test('GET stream: tampered session 404; after DELETE the stateful backend says 404, so does the gateway', async () => {
  const { client, transport } = await connect();
  const sid = transport.sessionId;
  const hdr = (id) => ({ accept: 'text/event-stream', 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' });
  const t = await fetch(`${gw.url}/mcp`, { headers: hdr(sid.slice(0, -3) + 'AAA') });
  assert.equal(t.status, 404);
  await t.text();
  await client.close(); // closes the client's GET stream
  const d = await fetch(`${gw.url}/mcp`, { method: 'DELETE', headers: hdr(sid) });
  await d.text();
  const g = await fetch(`${gw.url}/mcp`, { headers: hdr(sid) });
  assert.equal(g.status, 404);
  await g.text();
});

test('a single-backend route exposes names unprefixed; spec.headers select the route', async () => {
  const url = new URL(`${gw.url}/team/mcp`);
  const client = new Client({ name: 'e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { 'X-Team': 'blue' } } }));
  const names = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(names, ['add_note', 'echo']);
  const r = await client.callTool({ name: 'echo', arguments: { text: 'plain' } });
  assert.equal(r.content[0].text, 'plain');
  assert.deepEqual((await client.listResources()).resources.map((x) => x.uri), ['notes://all']);
  await client.close();
  // Another team's header does not reach the route.
  const other = new Client({ name: 'e2e', version: '1.0.0' });
  await assert.rejects(other.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { 'X-Team': 'red' } } })));
});

test('a route with apiKeyAuth serves only the right key (401 otherwise)', async () => {
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
  for (const key of [undefined, 'wrong']) {
    const res = await fetch(`${gw.url}/locked/mcp`, { method: 'POST', body: JSON.stringify(init),
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
        ...(key ? { 'x-client-key': key } : {}) } });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'ApiKey realm="aigw"');
    assert.doesNotMatch(await res.text(), /key-a|wrong/);
  }
  // The right key: the SDK client is served (details in mcp_auth.test.mjs).
  const client = new Client({ name: 'e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/locked/mcp`),
    { requestInit: { headers: { 'X-Client-Key': 'key-a-0123456789' } } }));
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['add_note', 'echo']);
  await client.close();
});

test('transport checks: 403 Origin, 406 Accept, 415 Content-Type, 400 bad JSON / version / batch, 405 GET', async () => {
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
  assert.equal((await post(init, { origin: 'http://evil.example' })).status, 403);
  assert.equal((await post(init, { accept: 'application/json' })).status, 406);
  assert.equal((await post(init, { 'content-type': 'text/plain' })).status, 415);
  const bad = await post('{"jsonrpc":', {});
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, -32700);
  assert.equal((await post(init, { 'mcp-protocol-version': '1999-01-01' })).status, 400);
  assert.equal((await post([init], {})).status, 400); // a batch needs a 2025-03-26 session
  const put = await fetch(`${gw.url}/mcp`, { method: 'PUT', body: '{}' });
  assert.equal(put.status, 405);
  assert.match(put.headers.get('allow'), /GET, POST, DELETE/);
  await put.text();
  const get = await fetch(`${gw.url}/mcp`, { headers: { accept: 'text/event-stream' } });
  assert.equal(get.status, 400); // no session
  await get.text();
  const get2 = await fetch(`${gw.url}/mcp`, { headers: { accept: 'application/json', 'mcp-session-id': 'x' } });
  assert.equal(get2.status, 406);
  await get2.text();
  // A localhost Origin is fine, and a raw initialize gets the negotiated version and a session id.
  const ok = await post(init, { origin: 'http://localhost:6274' });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.result.protocolVersion, '2025-06-18');
  assert.ok(ok.headers.get('mcp-session-id'));
});

test('2025-03-26 batches: answered as one array in order; refused for later revisions', async () => {
  const initFor = async (v) => {
    const r = await post({ jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: v, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    assert.equal(r.json.result.protocolVersion, v);
    return r.headers.get('mcp-session-id');
  };
  const sid = await initFor('2025-03-26');
  const batch = [
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { jsonrpc: '2.0', id: 'a', method: 'tools/list' },
    { jsonrpc: '2.0', id: 'b', method: 'ping' },
    { jsonrpc: '2.0', id: 'c', method: 'tools/call', params: { name: 'weather__get_forecast', arguments: { city: 'Rome' } } },
    { jsonrpc: '2.0', id: 'd', method: 'tools/call', params: { name: 'nosuch__x', arguments: {} } },
    { bogus: true },
  ];
  const r = await post(batch, { 'mcp-session-id': sid });
  assert.equal(r.status, 200, r.text);
  assert.ok(Array.isArray(r.json));
  assert.deepEqual(r.json.map((m) => m.id), ['a', 'b', 'c', 'd', null]);
  assert.ok(r.json[0].result.tools.some((t) => t.name === 'weather__get_forecast'));
  assert.deepEqual(r.json[1].result, {});
  assert.equal(r.json[2].result.content[0].text, 'Sunny in Rome');
  assert.equal(r.json[3].error.code, -32602);
  assert.equal(r.json[4].error.code, -32600);
  // Notifications only: 202.
  const n = await post([{ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }], { 'mcp-session-id': sid });
  assert.equal(n.status, 202);
  // Later revisions have no batches.
  assert.equal((await post(batch, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' })).status, 400);
  const sid2 = await initFor('2025-06-18');
  assert.equal((await post(batch, { 'mcp-session-id': sid2 })).status, 400);
  assert.equal((await post('[1,', { 'mcp-session-id': sid })).status, 400);

  // A client leaving in the middle of a batch: the running member is cancelled, the rest dropped.
  const ac = new AbortController();
  const slow = fetch(`${gw.url}/mcp`, { method: 'POST', signal: ac.signal,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid },
    body: JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'weather__slow_count', arguments: { n: 100 } } },
      { jsonrpc: '2.0', id: 3, method: 'tools/list' }]) }).catch(() => 'aborted');
  await new Promise((r) => setTimeout(r, 200));
  ac.abort();
  assert.equal(await slow, 'aborted');
  const again = await post(batch.slice(3, 4), { 'mcp-session-id': sid });
  assert.equal(again.json[0].result.content[0].text, 'Sunny in Rome');
});

test('sessions: missing -> 400, tampered -> 404, DELETE -> then 404', async () => {
  const { client, transport } = await connect();
  const sid = transport.sessionId;
  const list = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };
  assert.equal((await post(list, {})).status, 400);
  const flip = sid.slice(0, -2) + (sid.at(-2) === 'A' ? 'B' : 'A') + sid.at(-1);
  assert.equal((await post(list, { 'mcp-session-id': flip })).status, 404);
  assert.equal((await post(list, { 'mcp-session-id': sid })).status, 200);
  const deletes = weather.seen.deletes;
  await transport.terminateSession();
  assert.equal(weather.seen.deletes, deletes + 1);
  const after = await post(list, { 'mcp-session-id': sid });
  assert.equal(after.status, 404);
  await client.close();
});

test('--mcp-json: the mcpServers JSON serves the same /mcp route', async () => {
  const cfg = {
    mcpServers: {
      weather: { type: 'http', url: `http://127.0.0.1:${weather.port}/mcp`, headers: { 'X-Api-Key': WEATHER_KEY },
        includeTools: ['get_forecast'] },
      notes: { url: `http://127.0.0.1:${notes.port}/mcp` },
      local: { command: 'some-stdio-server' },
    },
  };
  const g2 = await startGateway({ args: ['--mcp-json', JSON.stringify(cfg)] });
  try {
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${g2.url}/mcp`)));
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(names, ['notes__add_note', 'notes__echo', 'weather__get_forecast']);
    const r = await client.callTool({ name: 'notes__echo', arguments: { text: 'hi' } });
    assert.equal(r.content[0].text, 'hi');
    await client.close();
  } finally {
    const ex = await g2.stop({ timeoutMs: T(10_000) });
    assert.equal(ex.code, 0);
    assertNoSanitizerReport(g2);
  }
});

test('--mcp-config FILE; bad MCP JSON, exclusive flags and bad seeds stop the start with a message', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'servers.json');
  fs.writeFileSync(file, JSON.stringify({ mcpServers: { notes: { url: `http://127.0.0.1:${notes.port}/mcp` } } }));
  const g = await startGateway({ args: ['--mcp-config', file, '--mcp-session-seed', 'a-seed-of-at-least-16-bytes'] });
  try {
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${g.url}/mcp`)));
    // one backend: unprefixed
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['add_note', 'echo']);
    await client.close();
    assert.doesNotMatch(g.stderr, /no session seed given/);
  } finally {
    await g.close();
  }
  const port = String(await freePort());
  const bad = [
    [['--mcp-json', '{"mcpServers":{"Bad_Name":{"url":"http://127.0.0.1:1/"}}}'], /server name must be/],
    [['--mcp-json', '{}', '--mcp-config', file], /exclusive/],
    [['--mcp-config', path.join(dir, 'missing.json')], /cannot read it/],
    [['--mcp-json', '{"mcpServers":{"a":{"url":"http://127.0.0.1:1/"}}}', '--mcp-session-seed', 'short'], /invalid MCP session seeds/],
  ];
  for (const [args, re] of bad) {
    const r = runAigw(['run', '--port', port, '--admin-port', '0', ...args]);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, re, r.stderr);
  }
});

test('sessions span replicas and restarts with the same seeds; rotation keeps old sessions; other seeds -> 404', async () => {
  const servers = JSON.stringify({ mcpServers: {
    weather: { url: `http://127.0.0.1:${weather.port}/mcp`, headers: { 'X-Api-Key': WEATHER_KEY } },
    notes: { url: `http://127.0.0.1:${notes.port}/mcp` } } });
  const A = 'seed-A-0123456789abcdef', B = 'seed-B-0123456789abcdef';
  const g1 = await startGateway({ args: ['--mcp-json', servers, '--mcp-session-seed', A] });
  const g2 = await startGateway({ args: ['--mcp-json', servers], env: { AIGW_MCP_SESSION_SEEDS: `${B},${A}` } });
  const g3 = await startGateway({ args: ['--mcp-json', servers, '--mcp-session-seed', B] });
  try {
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${g1.url}/mcp`));
    await client.connect(transport);
    const call = (g) => fetch(`${g.url}/mcp`, { method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
        'mcp-session-id': transport.sessionId, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call',
        params: { name: 'weather__get_forecast', arguments: { city: 'Lima' } } }) });
    const r2 = await call(g2);
    assert.equal(r2.status, 200);
    assert.match(await r2.text(), /Sunny in Lima/); // another process, the same backend session
    const r3 = await call(g3);
    assert.equal(r3.status, 404);
    await r3.text();
    await client.close();
  } finally {
    for (const g of [g1, g2, g3]) await g.close();
  }
});

test('GET stream: events replayed by one backend while another is slow to answer its GET', { timeout: T(15_000) }, async () => {
  const q = await startQuirky();
  q.seen.getDelayMs = 200;
  const g = await startGateway({ args: ['--mcp-json', JSON.stringify({ mcpServers: {
    weather: { url: `http://127.0.0.1:${weather.port}/mcp`, headers: { 'X-Api-Key': WEATHER_KEY } },
    quirky: { url: `http://127.0.0.1:${q.port}/mcp` } } })], env: { AIGW_MCP_HEARTBEAT_MS: '5000' } });
  try {
    const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const p = (body, h = {}) => fetch(`${g.url}/mcp`, { method: 'POST', headers: { ...base, ...h }, body: JSON.stringify(body) });
    const init = await p({ jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    await init.text();
    const hdr = { 'mcp-session-id': init.headers.get('mcp-session-id'), 'mcp-protocol-version': '2025-11-25' };
    await (await p({ jsonrpc: '2.0', method: 'notifications/initialized' }, hdr)).text();
    const ac = new AbortController();
    const a = await fetch(`${g.url}/mcp`, { signal: ac.signal, headers: { accept: 'text/event-stream', ...hdr } });
    const st = { buf: '', id: null };
    const ra = a.body.getReader();
    await new Promise((r) => setTimeout(r, 300));
    await (await p({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'weather__announce', arguments: {} } }, hdr)).text();
    const ev1 = await readEvent(ra, st, /list_changed/);
    ac.abort();
    await new Promise((r) => setTimeout(r, 100));
    await (await p({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'weather__announce', arguments: {} } }, hdr)).text();
    await new Promise((r) => setTimeout(r, 150));
    // weather replays at once; quirky answers its GET 200 ms later
    const b = await fetch(`${g.url}/mcp`, { headers: { accept: 'text/event-stream', ...hdr, 'last-event-id': ev1.id } });
    assert.equal(b.status, 200);
    const ev2 = await readEvent(b.body.getReader(), { buf: '', id: null }, /list_changed/);
    assert.match(ev2.id, /^weather:/);
    await b.body.cancel().catch(() => {});
  } finally {
    await g.close();
    q.srv.close();
    q.srv.closeAllConnections?.();
  }
});

test('quirky backend: SSE under application/json, priming event, every page drained, duplicate dropped', async () => {
  const q = await startQuirky();
  const g = await startGateway({ args: ['--mcp-json', JSON.stringify({ mcpServers: {
    quirky: { url: `http://127.0.0.1:${q.port}/mcp` }, notes: { url: `http://127.0.0.1:${notes.port}/mcp` } } })] });
  try {
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${g.url}/mcp`)));
    assert.ok(client.getServerCapabilities().logging, 'capabilities are the union');
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(names, ['notes__add_note', 'notes__echo', 'quirky__a', 'quirky__b', 'quirky__c']);
    assert.deepEqual(q.seen.cursors, [null, 'p2']);
    const r = await client.callTool({ name: 'quirky__c', arguments: {} });
    assert.equal(r.content[0].text, 'q:c');
    // A stream cut before the answer still gives the client an answer for its id.
    await assert.rejects(client.callTool({ name: 'quirky__cut', arguments: {} }), (e) => e.code === -32603);
    // A JSON-RPC error under HTTP 500 reaches the client as the backend wrote it.
    await assert.rejects(client.callTool({ name: 'quirky__boom', arguments: {} }),
      (e) => e.code === -32050 && /boom inside/.test(e.message));
    await client.close();
    assert.match(g.stderr, /backend quirky lists a duplicate tools entry; dropped/);
  } finally {
    await g.close();
    q.srv.close();
    q.srv.closeAllConnections?.();
  }
});

test('a backend that fails initialize is left out; all failing -> JSON-RPC error', async () => {
  const dead = await closedPort();
  const cfg = (deadOnly) => ({
    mcpServers: deadOnly ? { gone: { url: `http://127.0.0.1:${dead}/mcp` } }
      : { gone: { url: `http://127.0.0.1:${dead}/mcp` }, notes: { url: `http://127.0.0.1:${notes.port}/mcp` } },
  });
  const g3 = await startGateway({ args: ['--mcp-json', JSON.stringify(cfg(false))] });
  const g4 = await startGateway({ args: ['--mcp-json', JSON.stringify(cfg(true))] });
  try {
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${g3.url}/mcp`)));
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(names, ['notes__add_note', 'notes__echo']);
    await client.close();
    const c2 = new Client({ name: 'e2e', version: '1.0.0' });
    await assert.rejects(c2.connect(new StreamableHTTPClientTransport(new URL(`${g4.url}/mcp`))),
      (e) => e.code === -32603);
  } finally {
    for (const g of [g3, g4]) {
      const ex = await g.stop({ timeoutMs: T(10_000) });
      assert.equal(ex.code, 0);
      assertNoSanitizerReport(g);
    }
  }
});

test('a client that disconnects mid-call cancels the upstream request', async () => {
  const { client, transport } = await connect();
  const sid = transport.sessionId;
  const ac = new AbortController();
  const closed = new Promise((resolve) => {
    weather.seen.onPost = (req, res) => {
      weather.seen.onPost = null;
      res.on('close', resolve);
    };
  });
  const p = fetch(`${gw.url}/mcp`, {
    method: 'POST',
    signal: ac.signal,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
      'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call',
      params: { name: 'weather__slow_count', arguments: { n: 200 } } }),
  }).then((r) => r.text()).catch(() => 'aborted');
  await new Promise((r) => setTimeout(r, 200));
  ac.abort();
  assert.equal(await p, 'aborted');
  // The backend's response ends well before its 200 * 30 ms would have.
  const t0 = Date.now();
  await closed;
  assert.ok(Date.now() - t0 < 3000);
  await client.close();
});

test('no backend API key in the gateway output', () => {
  assert.ok(!gw.stderr.includes(WEATHER_KEY));
  assert.ok(!JSON.stringify(gw.logs).includes(WEATHER_KEY));
});

test('an open GET stream does not hold up SIGTERM: it ends at once and the gateway exits', async () => {
  const { client, transport } = await connect();
  const res = await fetch(`${gw.url}/mcp`, {
    headers: { accept: 'text/event-stream', 'mcp-session-id': transport.sessionId, 'mcp-protocol-version': '2025-11-25' } });
  assert.equal(res.status, 200);
  const body = res.text(); // resolves when the gateway ends the stream
  const t0 = Date.now();
  const ex = await gw.stop({ timeoutMs: T(10_000) });
  assert.equal(ex.code, 0);
  assert.ok(Date.now() - t0 < T(5000), `exit took ${Date.now() - t0} ms`);
  await body;
  assertNoSanitizerReport(gw);
  assert.ok(!gw.stderr.includes(WEATHER_KEY));
  await client.close().catch(() => {});
});
