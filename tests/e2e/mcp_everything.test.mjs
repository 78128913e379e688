// End-to-end: the MCP gateway aggregating @modelcontextprotocol/server-everything (the reference
// test server, run as a child process behind a recording proxy) and a stateful SDK server of ours,
// driven by the SDK's Client over Streamable HTTP: every feature server-everything has, prefixed.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';

import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  isInitializeRequest, CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
  ListResourcesRequestSchema, ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

import { startGateway, T } from './lib/gateway.mjs';
import { assertNoSanitizerReport } from './lib/common.mjs';
import { readBody, sleep, until, readEvent, rawPost, startEverything, startRecorder } from './lib/mcp_util.mjs';

// Our stateful server: paged resources (server-everything's list fits one page), a tool that waits
// until cancelled, a completable prompt. Everything it is sent is recorded.
function stationServer(rec) {
  const s = new McpServer({ name: 'station', version: '1.0.0' },
    { instructions: 'Station: weather station readings.', capabilities: { logging: {} } });
  s.registerTool('add', { description: 'adds', inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: 'text', text: `station sum ${a + b}` }] }));
  s.registerTool('wait', { description: 'waits until cancelled' }, async (extra) => {
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 20_000);
      extra.signal.addEventListener('abort', () => { clearTimeout(t); rec.aborted.push(extra.requestId); resolve(); });
    });
    return { content: [{ type: 'text', text: 'waited' }] };
  });
  s.registerPrompt('brief', { description: 'a brief',
    argsSchema: { topic: completable(z.string(), (v) => ['rain', 'snow', 'wind'].filter((x) => x.startsWith(v))) } },
  ({ topic }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Brief on ${topic}` } }] }));
  for (let i = 1; i <= 25; i++) {
    s.registerResource(`reading-${i}`, `station://reading/${i}`, { mimeType: 'text/plain' },
      async (uri) => ({ contents: [{ uri: uri.href, text: `reading ${i}` }] }));
  }
  s.registerResource('log', new ResourceTemplate('station://log/{day}', { list: undefined }), {},
    async (uri, { day }) => ({ contents: [{ uri: uri.href, text: `log of ${day}` }] }));
  // Ten readings a page, so the gateway has to follow nextCursor.
  s.server.setRequestHandler(ListResourcesRequestSchema, async (req) => {
    const from = Number(req.params?.cursor ?? 0);
    const page = [];
    for (let i = from + 1; i <= Math.min(from + 10, 25); i++) {
      page.push({ uri: `station://reading/${i}`, name: `reading-${i}`, mimeType: 'text/plain' });
    }
    return from + 10 < 25 ? { resources: page, nextCursor: String(from + 10) } : { resources: page };
  });
  return s;
}

class EventStore {
  constructor() { this.events = []; this.n = 0; }
  async storeEvent(streamId, message) {
    const eventId = `st${++this.n}`;
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

function startStation() {
  const transports = new Map();
  const rec = { posts: [], gets: 0, deletes: [], aborted: [] };
  const srv = http.createServer(async (req, res) => {
    const body = req.method === 'POST' ? JSON.parse(await readBody(req)) : undefined;
    const sid = req.headers['mcp-session-id'];
    if (req.method === 'POST') rec.posts.push({ msg: body, sid, protocolVersion: req.headers['mcp-protocol-version'] });
    if (req.method === 'GET') rec.gets++;
    if (req.method === 'DELETE') rec.deletes.push(sid);
    if (sid && transports.has(sid)) {
      await transports.get(sid).handleRequest(req, res, body);
      return;
    }
    if (!sid && req.method === 'POST' && isInitializeRequest(body)) {
      const t = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new EventStore(),
        onsessioninitialized: (id) => transports.set(id, t),
      });
      t.onclose = () => { if (t.sessionId) transports.delete(t.sessionId); };
      await stationServer(rec).connect(t);
      await t.handleRequest(req, res, body);
      return;
    }
    res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' })
      .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, port: srv.address().port, rec })));
}

let everything, recorder, station, gw;

before(async () => {
  everything = await startEverything();
  recorder = await startRecorder(everything.port);
  station = await startStation();
  gw = await startGateway({ args: ['--mcp-json', JSON.stringify({ mcpServers: {
    everything: { url: `http://127.0.0.1:${recorder.port}/mcp` },
    station: { url: `http://127.0.0.1:${station.port}/mcp` },
  } })], env: { AIGW_MCP_HEARTBEAT_MS: '500' } });
});

after(async () => {
  await gw?.close();
  recorder?.close();
  station?.srv.close();
  station?.srv.closeAllConnections?.();
  await everything?.stop();
});

const CAPS = { sampling: {}, elicitation: {}, roots: { listChanged: true } };

// Clients still open when a test ends (it failed half-way) are closed, so their streams do not
// hold the gateway's drain.
const open = new Set();
afterEach(async () => {
  for (const c of open) await c.close().catch(() => {});
  open.clear();
});

async function connect({ capabilities = CAPS, url = `${gw.url}/mcp` } = {}) {
  const client = new Client({ name: 'e2e-everything', version: '1.0.0' }, { capabilities });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  open.add(client);
  return { client, transport };
}

// server-everything registers its sampling/elicitation/roots tools once `initialized` arrived,
// which it handles after answering 202: wait until they are listed.
async function toolNames(client, want) {
  let names = [];
  await until(async () => {
    names = (await client.listTools()).tools.map((t) => t.name);
    return !want || names.includes(want);
  }, T(5000));
  return names;
}

const sent = (method, from = 0) => recorder.seen.slice(from).filter((r) => r.msg?.method === method);

test('initialize: both servers get the client\'s initialize; union of capabilities, joined instructions', async () => {
  const mark = recorder.seen.length;
  const { client } = await connect();
  assert.equal(client.getServerVersion().name, 'aigw');
  const caps = client.getServerCapabilities();
  assert.ok(caps.tools && caps.prompts && caps.logging && caps.completions, JSON.stringify(caps));
  assert.equal(caps.resources?.subscribe, true, 'resources.subscribe from server-everything');
  assert.equal(caps.tools.listChanged, true);
  // server-everything offers tasks; the gateway routes no tasks/* method, so it does not offer them
  assert.equal(caps.tasks, undefined, JSON.stringify(caps));
  const ins = client.getInstructions();
  assert.match(ins, /Station: weather station readings\./);
  assert.match(ins, /Everything Server/);
  const init = sent('initialize', mark);
  assert.equal(init.length, 1);
  assert.equal(init[0].msg.params.clientInfo.name, 'e2e-everything');
  assert.deepEqual(init[0].msg.params.capabilities.elicitation, {});
  assert.ok(init[0].msg.params.capabilities.sampling, 'the client\'s capabilities reach server-everything');
  // after initialize, every request carries server-everything's own session id, never ours
  await client.listTools();
  const later = recorder.seen.slice(mark + 1).filter((r) => r.method === 'POST');
  assert.ok(later.length >= 2);
  const theirs = later[0].sid;
  assert.match(theirs, /^[0-9a-f-]{36}$/);
  assert.ok(later.every((r) => r.sid === theirs && r.protocolVersion === '2025-11-25'), JSON.stringify(later.map((r) => r.sid)));
  await client.close();
});

test('tools/list: every server-everything tool prefixed, next to ours; the same set as asked directly', async () => {
  const direct = new Client({ name: 'direct', version: '1.0.0' }, { capabilities: CAPS });
  await direct.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${everything.port}/mcp`)));
  open.add(direct);
  let theirs = [];
  await until(async () => {
    theirs = (await direct.listTools()).tools.map((t) => t.name);
    return theirs.includes('trigger-sampling-request');
  }, T(5000));
  await direct.close();

  const { client } = await connect();
  const names = await toolNames(client, 'everything__trigger-sampling-request');
  assert.ok(theirs.length >= 15, theirs.join(','));
  assert.deepEqual(names.filter((n) => n.startsWith('everything__')).sort(), theirs.map((n) => `everything__${n}`).sort());
  assert.deepEqual(names.filter((n) => n.startsWith('station__')).sort(), ['station__add', 'station__wait']);
  assert.equal(names.length, theirs.length + 2, 'nothing unprefixed');
  await client.close();
});

test('tools/call: echo, get-sum, structured content and an image, routed with the client\'s arguments', async () => {
  const { client } = await connect();
  const e = await client.callTool({ name: 'everything__echo', arguments: { message: 'héllo "gateway"\n' } });
  assert.deepEqual(e.content, [{ type: 'text', text: 'Echo: héllo "gateway"\n' }]);
  const s = await client.callTool({ name: 'everything__get-sum', arguments: { a: 2.5, b: 40 } });
  assert.match(s.content[0].text, /42\.5/);
  const st = await client.callTool({ name: 'everything__get-structured-content', arguments: { location: 'New York' } });
  assert.equal(typeof st.structuredContent.temperature, 'number', JSON.stringify(st));
  assert.deepEqual(JSON.parse(st.content[0].text), st.structuredContent);
  const img = await client.callTool({ name: 'everything__get-tiny-image', arguments: {} });
  const png = img.content.find((c) => c.type === 'image');
  assert.equal(png.mimeType, 'image/png');
  assert.equal(Buffer.from(png.data, 'base64').subarray(1, 4).toString(), 'PNG');
  const ours = await client.callTool({ name: 'station__add', arguments: { a: 1, b: 2 } });
  assert.equal(ours.content[0].text, 'station sum 3');
  // the backend saw its own tool name
  assert.ok(sent('tools/call').some((r) => r.msg.params.name === 'get-sum' && r.msg.params.arguments.b === 40));
  // a tool server-everything does not have is refused by server-everything, not by the gateway
  const bad = await client.callTool({ name: 'everything__no-such-tool', arguments: {} }).catch((err) => err);
  assert.ok(bad.isError || bad.code !== undefined, JSON.stringify(bad));
  await client.close();
});

test('trigger-long-running-operation: progress notifications in order, then the result', { timeout: T(20_000) }, async () => {
  const { client } = await connect();
  const seen = [];
  const r = await client.callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 1, steps: 5 } },
    undefined, { onprogress: (p) => seen.push([p.progress, p.total]) });
  assert.deepEqual(seen, [[1, 5], [2, 5], [3, 5], [4, 5], [5, 5]]);
  assert.match(r.content[0].text, /Long running operation completed\. Duration: 1 seconds, Steps: 5\./);
  await client.close();
});

test('sampling: server-everything\'s request reaches the client with a backend-named id; the answer goes back', async () => {
  const { client } = await connect();
  const ids = [];
  client.setRequestHandler(CreateMessageRequestSchema, async (req, extra) => {
    ids.push(extra.requestId);
    assert.match(req.params.messages[0].content.text, /context: what is 6x7/);
    return { model: 'e2e-model', role: 'assistant', content: { type: 'text', text: 'forty-two' }, stopReason: 'endTurn' };
  });
  await toolNames(client, 'everything__trigger-sampling-request');
  const mark = recorder.seen.length;
  const r = await client.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'what is 6x7', maxTokens: 9 } });
  assert.match(r.content[0].text, /forty-two/);
  assert.match(r.content[0].text, /e2e-model/);
  assert.equal(ids.length, 1);
  assert.match(String(ids[0]), /^everything__/);
  // the client's answer reached server-everything with server-everything's own id
  const answers = recorder.seen.slice(mark).filter((x) => x.msg && x.msg.result && x.msg.result.model === 'e2e-model');
  assert.equal(answers.length, 1);
  assert.equal(`everything__${JSON.stringify(answers[0].msg.id)}`, String(ids[0]));
  await client.close();
});

test('elicitation: form request answered by the client (ElicitRequestSchema handler)', async () => {
  const { client } = await connect();
  const asked = [];
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    asked.push(req.params);
    return { action: 'accept', content: { name: 'Ada Lovelace', check: true, integer: 7 } };
  });
  await toolNames(client, 'everything__trigger-elicitation-request');
  const r = await client.callTool({ name: 'everything__trigger-elicitation-request', arguments: {} });
  assert.equal(asked.length, 1);
  assert.equal(asked[0].requestedSchema.properties.name.type, 'string');
  const text = r.content.map((c) => c.text).join('\n');
  assert.match(text, /User provided the requested information/);
  assert.match(text, /- Name: Ada Lovelace/);
  assert.match(text, /- Favorite Integer: 7/);
  // declined this time
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'decline' }));
  const d = await client.callTool({ name: 'everything__trigger-elicitation-request', arguments: {} });
  assert.match(d.content.map((c) => c.text).join('\n'), /declined/);
  await client.close();
});

test('roots: server-everything asks for the roots on the GET stream; the client\'s answer reaches it', { timeout: T(20_000) }, async () => {
  const { client } = await connect();
  let asked = 0;
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    asked++;
    return { roots: [{ uri: 'file:///work/project-a', name: 'Project A' }] };
  });
  await toolNames(client, 'everything__get-roots-list');
  const r = await client.callTool({ name: 'everything__get-roots-list', arguments: {} });
  assert.ok(asked >= 1);
  assert.match(r.content[0].text, /Project A\n\s+URI: file:\/\/\/work\/project-a/);
  await client.close();
});

test('prompts: list prefixed, get with arguments, completion/complete for prompts and templates', async () => {
  const { client } = await connect();
  const names = (await client.listPrompts()).prompts.map((p) => p.name).sort();
  assert.deepEqual(names, ['everything__args-prompt', 'everything__completable-prompt', 'everything__resource-prompt',
    'everything__simple-prompt', 'station__brief']);
  const g = await client.getPrompt({ name: 'everything__args-prompt', arguments: { city: 'Oslo', state: 'Viken' } });
  assert.equal(g.messages[0].content.text, "What's weather in Oslo, Viken?");
  const b = await client.getPrompt({ name: 'station__brief', arguments: { topic: 'wind' } });
  assert.equal(b.messages[0].content.text, 'Brief on wind');
  // a prompt with an embedded resource
  const rp = await client.getPrompt({ name: 'everything__resource-prompt', arguments: { resourceType: 'Text', resourceId: '3' } });
  assert.ok(rp.messages.some((m) => m.content.type === 'resource' && /Resource 3/.test(m.content.resource.text)), JSON.stringify(rp));
  const c1 = await client.complete({ ref: { type: 'ref/prompt', name: 'everything__completable-prompt' },
    argument: { name: 'department', value: 'S' } });
  assert.deepEqual(c1.completion.values.sort(), ['Sales', 'Support']);
  const c2 = await client.complete({ ref: { type: 'ref/prompt', name: 'everything__completable-prompt' },
    argument: { name: 'name', value: 'A' }, context: { arguments: { department: 'Engineering' } } });
  assert.deepEqual(c2.completion.values, ['Alice']);
  const c3 = await client.complete({ ref: { type: 'ref/resource', uri: 'everything+demo://resource/dynamic/text/{resourceId}' },
    argument: { name: 'resourceId', value: '12' } });
  assert.deepEqual(c3.completion.values, ['12']);
  const c4 = await client.complete({ ref: { type: 'ref/prompt', name: 'station__brief' }, argument: { name: 'topic', value: 'r' } });
  assert.deepEqual(c4.completion.values, ['rain']);
  await client.close();
});

test('resources: every page of ours and server-everything\'s documents, reads, templates', async () => {
  const { client } = await connect();
  const mark = station.rec.posts.length;
  const uris = (await client.listResources()).resources.map((r) => r.uri);
  const ours = uris.filter((u) => u.startsWith('station+'));
  assert.equal(ours.length, 25);
  assert.equal(new Set(ours).size, 25);
  assert.deepEqual(station.rec.posts.slice(mark).filter((p) => p.msg.method === 'resources/list').map((p) => p.msg.params?.cursor ?? null),
    [null, '10', '20']);
  const docs = uris.filter((u) => u.startsWith('everything+demo://resource/static/document/'));
  assert.ok(docs.includes('everything+demo://resource/static/document/features.md'), uris.join('\n'));
  assert.equal(uris.length, 25 + docs.length);
  const f = await client.readResource({ uri: 'everything+demo://resource/static/document/features.md' });
  assert.match(f.contents[0].text, /# Everything Server - Features/);
  const tpl = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate).sort();
  assert.deepEqual(tpl, ['everything+demo://resource/dynamic/blob/{resourceId}', 'everything+demo://resource/dynamic/text/{resourceId}',
    'station+station://log/{day}']);
  const t = await client.readResource({ uri: 'everything+demo://resource/dynamic/text/7' });
  assert.match(t.contents[0].text, /^Resource 7: This is a plaintext resource/);
  const blob = await client.readResource({ uri: 'everything+demo://resource/dynamic/blob/8' });
  assert.match(Buffer.from(blob.contents[0].blob, 'base64').toString(), /^Resource 8: This is a base64 blob/);
  const l = await client.readResource({ uri: 'station+station://log/monday' });
  assert.equal(l.contents[0].text, 'log of monday');
  const r25 = await client.readResource({ uri: 'station+station://reading/25' });
  assert.equal(r25.contents[0].text, 'reading 25');
  await client.close();
});

test('resources/subscribe + unsubscribe routed with the backend URI; updates arrive on the GET stream with the client\'s URI', { timeout: T(20_000) }, async () => {
  const { client } = await connect();
  const updates = [];
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => { updates.push(n.params.uri); });
  const uri = 'everything+demo://resource/dynamic/text/1';
  const mark = recorder.seen.length;
  assert.deepEqual(await client.subscribeResource({ uri }), {});
  assert.equal(sent('resources/subscribe', mark)[0]?.msg.params.uri, 'demo://resource/dynamic/text/1');
  await sleep(200); // the SDK client's GET stream (and so the gateway's GET to server-everything) is open
  const on = await client.callTool({ name: 'everything__toggle-subscriber-updates', arguments: {} });
  assert.match(on.content[0].text, /Started/);
  assert.ok(await until(() => updates.length >= 1, T(5000)), 'a resources/updated notification arrived');
  assert.equal(updates[0], uri, 'the URI the client subscribed to, prefixed');
  const off = await client.callTool({ name: 'everything__toggle-subscriber-updates', arguments: {} });
  assert.match(off.content[0].text, /Stopped/);
  assert.deepEqual(await client.unsubscribeResource({ uri }), {});
  assert.equal(sent('resources/unsubscribe', mark)[0]?.msg.params.uri, 'demo://resource/dynamic/text/1');
  await client.close();
});

test('logging/setLevel reaches both servers', async () => {
  const { client } = await connect();
  const m1 = recorder.seen.length, m2 = station.rec.posts.length;
  assert.deepEqual(await client.setLoggingLevel('warning'), {});
  assert.equal(sent('logging/setLevel', m1)[0]?.msg.params.level, 'warning');
  assert.equal(station.rec.posts.slice(m2).find((p) => p.msg.method === 'logging/setLevel')?.msg.params.level, 'warning');
  await client.close();
});

test('cancellation: aborting a call sends notifications/cancelled for its id to the backend running it, no other', { timeout: T(20_000) }, async () => {
  const { client } = await connect();
  // on server-everything
  const ac = new AbortController();
  const progress = [];
  const mark = recorder.seen.length;
  const stationCancels = () => station.rec.posts.filter((x) => x.msg.method === 'notifications/cancelled').length;
  const sc0 = stationCancels();
  const p = client.callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 10, steps: 50 } },
    undefined, { signal: ac.signal, onprogress: (x) => progress.push(x.progress) });
  assert.ok(await until(() => progress.length >= 1, T(5000)), 'progress before the abort');
  ac.abort('the user gave up');
  await assert.rejects(p);
  const call = sent('tools/call', mark).find((r) => r.msg.params.name === 'trigger-long-running-operation');
  assert.ok(await until(() => sent('notifications/cancelled', mark).some((r) => r.msg.params.requestId === call.msg.id)),
    'server-everything got the cancellation of its call');
  await sleep(200);
  assert.equal(stationCancels(), sc0, 'our server was not told about a call it never had');

  // on ours: the tool sees its abort signal fire
  const ac2 = new AbortController();
  const aborted0 = station.rec.aborted.length;
  const smark = station.rec.posts.length;
  const p2 = client.callTool({ name: 'station__wait', arguments: {} }, undefined, { signal: ac2.signal });
  assert.ok(await until(() => station.rec.posts.slice(smark).some((x) => x.msg.method === 'tools/call')));
  await sleep(100);
  ac2.abort('enough');
  await assert.rejects(p2);
  assert.ok(await until(() => station.rec.aborted.length === aborted0 + 1), 'the station tool was cancelled');
  const waitCall = station.rec.posts.slice(smark).find((x) => x.msg.method === 'tools/call');
  assert.equal(station.rec.aborted.at(-1), waitCall.msg.id);
  assert.equal(station.rec.posts.slice(smark).filter((x) => x.msg.method === 'notifications/cancelled').length, 1);
  await sleep(200);
  assert.equal(sent('notifications/cancelled', mark).length, 1, 'server-everything got only the cancel of its own call');
  await client.close();
});

test('GET stream: server-everything notifications relayed with composite ids; resumed with Last-Event-ID', { timeout: T(20_000) }, async () => {
  const url = `${gw.url}/mcp`;
  const init = await rawPost(url, { jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  assert.equal(init.status, 200);
  const hdr = { 'mcp-session-id': init.headers.get('mcp-session-id'), 'mcp-protocol-version': '2025-11-25' };
  assert.equal((await rawPost(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, hdr)).status, 202);
  const uri = 'everything+demo://resource/dynamic/text/2';
  const sub = await rawPost(url, { jsonrpc: '2.0', id: 2, method: 'resources/subscribe', params: { uri } }, hdr);
  assert.match(sub.text, /"result":\{\}/);
  const toggle = (id) => rawPost(url, { jsonrpc: '2.0', id, method: 'tools/call',
    params: { name: 'everything__toggle-subscriber-updates', arguments: {} } }, hdr);

  const gets = () => recorder.seen.filter((r) => r.method === 'GET' && r.sid === recorder.seen.find((x) => x.msg?.id === 2 && x.msg.method === 'resources/subscribe' && x.sid)?.sid);
  const g0 = gets().length;
  const acA = new AbortController();
  const a = await fetch(url, { signal: acA.signal, headers: { accept: 'text/event-stream', ...hdr } });
  assert.equal(a.status, 200);
  assert.ok(await until(() => gets().length === g0 + 1), 'the gateway opened server-everything\'s GET stream');
  await sleep(100);
  assert.match((await toggle(3)).text, /Started/);
  const stA = { buf: '', id: null };
  const ev1 = await readEvent(a.body.getReader(), stA, /notifications\/resources\/updated/);
  assert.match(ev1.id, /^everything:[A-Za-z0-9_-]+$/);
  assert.equal(JSON.parse(ev1.data).params.uri, uri);
  acA.abort();
  await sleep(200);
  // while nobody listens: stop and start again; server-everything stores the new update
  assert.match((await toggle(4)).text, /Stopped/);
  assert.match((await toggle(5)).text, /Started/);
  assert.match((await toggle(6)).text, /Stopped/);
  const acB = new AbortController();
  const b = await fetch(url, { signal: acB.signal, headers: { accept: 'text/event-stream', ...hdr, 'last-event-id': ev1.id } });
  assert.equal(b.status, 200);
  const ev2 = await readEvent(b.body.getReader(), { buf: '', id: null }, /notifications\/resources\/updated/);
  assert.notEqual(ev2.id, ev1.id);
  const backendId = Buffer.from(ev1.id.slice('everything:'.length), 'base64url').toString();
  assert.equal(gets().at(-1).lastEventId, backendId, 'server-everything was asked to resume after the event the client saw');
  acB.abort();
  await rawPost(url, { jsonrpc: '2.0', id: 7, method: 'resources/unsubscribe', params: { uri } }, hdr);
});

test('DELETE ends the session on both servers with their own ids; the gateway then answers 404', async () => {
  const { client, transport } = await connect();
  await client.listTools();
  const theirSid = recorder.seen.at(-1).sid;
  const ourSid = station.rec.posts.at(-1).sid;
  const d0 = station.rec.deletes.length;
  const mark = recorder.seen.length;
  const sid = transport.sessionId;
  await transport.terminateSession();
  assert.deepEqual(recorder.seen.slice(mark).filter((r) => r.method === 'DELETE').map((r) => r.sid), [theirSid]);
  assert.deepEqual(station.rec.deletes.slice(d0), [ourSid]);
  const hdr = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  const after = await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: 9, method: 'tools/list' }, hdr);
  assert.equal(after.status, 404);
  const call = await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: 10, method: 'tools/call',
    params: { name: 'station__add', arguments: { a: 1, b: 1 } } }, hdr);
  assert.equal(call.status, 404);
  const get = await fetch(`${gw.url}/mcp`, { headers: { accept: 'text/event-stream', ...hdr } });
  assert.equal(get.status, 404);
  await get.text();
  await client.close();
});

test('server-everything restarted: its 400 for the session it lost is a 404 for the client; a new session works', { timeout: T(30_000) }, async () => {
  const { client, transport } = await connect();
  assert.match((await client.callTool({ name: 'everything__echo', arguments: { message: 'before' } })).content[0].text, /before/);
  const sid = transport.sessionId;
  await everything.stop();
  everything = await startEverything({ port: everything.port });
  const hdr = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  const mark = recorder.seen.length;
  const call = await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: 11, method: 'tools/call',
    params: { name: 'everything__echo', arguments: { message: 'after' } } }, hdr);
  assert.equal(call.status, 404, call.text);
  const list = await rawPost(`${gw.url}/mcp`, { jsonrpc: '2.0', id: 12, method: 'prompts/list' }, hdr);
  assert.equal(list.status, 404, list.text);
  // it was server-everything that refused (400), not the gateway on its own
  assert.ok(recorder.seen.slice(mark).some((r) => r.msg?.id === 11 && r.sid), 'the call reached server-everything');
  const { client: again } = await connect();
  assert.match((await again.callTool({ name: 'everything__echo', arguments: { message: 'after' } })).content[0].text, /Echo: after/);
  await client.close();
});

test('the gateway exits cleanly after all this', async () => {
  const ex = await gw.stop({ timeoutMs: T(10_000) });
  assert.equal(ex.code, 0);
  assertNoSanitizerReport(gw);
});
