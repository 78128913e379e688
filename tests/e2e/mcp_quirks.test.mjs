// End-to-end: the MCP gateway in front of backends that behave the way real servers do but
// gateways trip over: stateless next to stateful (each with its own protocol revision), GET
// answered 405 or ended at once, GET streams that end and are reopened, SSE framing variants, the
// 2025-11-25 polling pattern, backends failing initialize, a backend that loses its session
// half-way (restart), and backends that hold a fan-out request open (the fan-out timeout).
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { isInitializeRequest, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

import { startGateway, runAigw, T } from './lib/gateway.mjs';
import { assertNoSanitizerReport } from './lib/common.mjs';
import { readBody, sleep, until, rawPost, messagesOf } from './lib/mcp_util.mjs';

class EventStore {
  constructor() { this.events = []; this.n = 0; }
  async storeEvent(streamId, message) {
    const eventId = `e${++this.n}`;
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

// A stateful SDK server (SSE answers, event store, 404 for sessions it does not know). restart()
// forgets every session and drops every connection, as a restarted process would.
function startStateful({ retryInterval } = {}) {
  let transports = new Map();
  const rec = { posts: [], gets: [], deletes: 0, stores: [] };
  const server = () => {
    const s = new McpServer({ name: 'stateful', version: '1.0.0' });
    s.registerTool('hello', { description: 'hello', inputSchema: { who: z.string() } },
      async ({ who }) => ({ content: [{ type: 'text', text: `hello ${who} from stateful` }] }));
    // The 2025-11-25 polling pattern: progress, then the POST stream is closed (the priming
    // event carried retry:), and the rest, result included, waits in the event store for the
    // client's GET with Last-Event-ID.
    s.registerTool('poll_me', { description: 'closes its stream before answering' }, async (extra) => {
      const token = extra._meta?.progressToken;
      const progress = (p) => token !== undefined && extra.sendNotification({ method: 'notifications/progress',
        params: { progressToken: token, progress: p, total: 2 } });
      await progress(1);
      rec.closedAt = Date.now();
      extra.closeSSEStream?.();
      await sleep(300);
      await progress(2);
      return { content: [{ type: 'text', text: 'polled result' }] };
    });
    return s;
  };
  const srv = http.createServer(async (req, res) => {
    const body = req.method === 'POST' ? JSON.parse(await readBody(req)) : undefined;
    const sid = req.headers['mcp-session-id'];
    if (req.method === 'POST') rec.posts.push({ msg: body, sid, protocolVersion: req.headers['mcp-protocol-version'] });
    if (req.method === 'GET') rec.gets.push({ at: Date.now(), sid, lastEventId: req.headers['last-event-id'] });
    if (req.method === 'DELETE') rec.deletes++;
    if (sid && transports.has(sid)) {
      await transports.get(sid).handleRequest(req, res, body);
      return;
    }
    if (!sid && req.method === 'POST' && isInitializeRequest(body)) {
      const store = new EventStore();
      rec.stores.push(store);
      const t = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: store,
        retryInterval,
        onsessioninitialized: (id) => transports.set(id, t),
      });
      const map = transports;
      t.onclose = () => { if (t.sessionId) map.delete(t.sessionId); };
      await server().connect(t);
      await t.handleRequest(req, res, body);
      return;
    }
    res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' })
      .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    srv, port: srv.address().port, rec,
    restart() {
      transports = new Map();
      srv.closeAllConnections?.();
    },
    close() { srv.close(); srv.closeAllConnections?.(); },
  })));
}

// A hand-written server. version: the revision it speaks (it answers initialize with it whatever
// the client asked); stateful: hands out a session id; get: '405' | 'end' (a stream that ends at
// once) | a function (req, res, rec) answering the GET (rec.gets counts it already); frame(json):
// the body of an answer to a request, with its content type; init: 'ok' | '500' | 'rpc-error';
// hang: methods whose requests it holds open and never answers (rec.held: { method, at, closedAt },
// closedAt set when the gateway drops the connection). rec.getLog: { at, lastEventId } of every GET.
// The tool "slow" answers after arguments.ms.
function startHand({ name, version = '2025-06-18', stateful = false, get = '405', frame = null, init = 'ok', hang = [] } = {}) {
  const rec = { posts: [], gets: 0, deletes: 0, getLog: [], held: [] };
  const sessions = new Set();
  let n = 0;
  const srv = http.createServer(async (req, res) => {
    const sid = req.headers['mcp-session-id'];
    if (req.method === 'GET') {
      rec.gets++;
      rec.getLog.push({ at: Date.now(), lastEventId: req.headers['last-event-id'] });
      if (typeof get === 'function') {
        get(req, res, rec);
      } else if (get === 'end') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(': nothing to say\n\n');
      } else {
        res.writeHead(405).end();
      }
      return;
    }
    if (req.method === 'DELETE') {
      rec.deletes++;
      sessions.delete(sid);
      res.writeHead(200).end();
      return;
    }
    const msg = JSON.parse(await readBody(req));
    rec.posts.push({ msg, sid, protocolVersion: req.headers['mcp-protocol-version'] });
    if (stateful && msg.method !== 'initialize' && !sessions.has(sid)) {
      res.writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }));
      return;
    }
    if (msg.id === undefined) {
      res.writeHead(202).end();
      return;
    }
    if (hang.includes(msg.method)) {
      const h = { method: msg.method, at: Date.now(), closedAt: null };
      rec.held.push(h);
      res.on('close', () => { h.closedAt = Date.now(); });
      return; // no answer, ever
    }
    if (msg.method === 'tools/call' && msg.params.name === 'slow') await sleep(msg.params.arguments?.ms ?? 0);
    let result;
    const headers = {};
    if (msg.method === 'initialize') {
      if (init === '500') {
        res.writeHead(500, { 'content-type': 'text/html' }).end('<h1>Internal Server Error</h1>');
        return;
      }
      if (init === 'rpc-error') {
        res.writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32602, message: 'Unsupported protocol version' } }));
        return;
      }
      result = { protocolVersion: version, capabilities: { tools: {} }, serverInfo: { name, version: '1' } };
      if (stateful) {
        const id = `${name}-session-${++n}`;
        sessions.add(id);
        headers['mcp-session-id'] = id;
      }
    } else if (msg.method === 'tools/list') {
      result = { tools: [{ name: 'greet', inputSchema: { type: 'object' } }] };
    } else if (msg.method === 'tools/call' && msg.params.name === 'rpc400') {
      // a 400 answering the request itself (it has the id), even if it speaks of a session
      res.writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32602, message: 'bad session parameter' } }));
      return;
    } else if (msg.method === 'tools/call' && msg.params.name === 'raw400') {
      // a 400 for no request that is not about the session
      res.writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: body too large' } }));
      return;
    } else if (msg.method === 'tools/call' && msg.params.name === 'lost400') {
      // what server-everything answers for a session it does not know
      res.writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: No valid session ID provided' } }));
      return;
    } else if (msg.method === 'tools/call') {
      result = { content: [{ type: 'text', text: `${name} greets ${msg.params.arguments?.who ?? 'nobody'}` }] };
    } else {
      res.writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } }));
      return;
    }
    const json = JSON.stringify({ jsonrpc: '2.0', id: msg.id, result });
    const [ctype, text] = frame ? frame(json, msg) : ['application/json', json];
    res.writeHead(200, { 'content-type': ctype, ...headers }).end(text);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    srv, port: srv.address().port, rec,
    close() { srv.close(); srv.closeAllConnections?.(); },
  })));
}

// Undone after each test, last first: clients, backends, then the gateway (whose exit is checked).
const cleanups = [];
afterEach(async () => {
  const errors = [];
  while (cleanups.length) {
    try { await cleanups.pop()(); } catch (e) { errors.push(e); }
  }
  if (errors.length) throw errors[0];
});

async function gateway(servers, env = {}, args = []) {
  const mcpServers = {};
  for (const [k, v] of Object.entries(servers)) mcpServers[k] = { url: `http://127.0.0.1:${v.port}/mcp` };
  const g = await startGateway({ args: ['--mcp-json', JSON.stringify({ mcpServers }), ...args], env });
  cleanups.push(async () => {
    const ex = await g.stop({ timeoutMs: T(10_000), expectCode: null });
    assert.equal(ex.code, 0, g.stderr.slice(-2000));
    assertNoSanitizerReport(g);
  });
  for (const v of Object.values(servers)) cleanups.push(async () => v.close());
  return g;
}

async function connect(g, opts = {}) {
  const client = new Client({ name: 'e2e-quirks', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${g.url}/mcp`), opts);
  await client.connect(transport);
  cleanups.push(async () => client.close());
  return { client, transport };
}

test('stateless next to stateful: each backend keeps its own session id (or none) and its own revision', async () => {
  const legacy = await startHand({ name: 'legacy', version: '2025-03-26' });
  const st = await startStateful();
  const g = await gateway({ legacy, st });
  const { client, transport } = await connect(g);
  const names = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(names, ['legacy__greet', 'st__hello', 'st__poll_me']);
  assert.equal((await client.callTool({ name: 'legacy__greet', arguments: { who: 'Ada' } })).content[0].text, 'legacy greets Ada');
  assert.equal((await client.callTool({ name: 'st__hello', arguments: { who: 'Alan' } })).content[0].text, 'hello Alan from stateful');

  // the stateless server never sees a session id; after initialize it is told its own revision
  const lp = legacy.rec.posts;
  assert.equal(lp[0].msg.method, 'initialize');
  assert.equal(lp[0].msg.params.protocolVersion, '2025-11-25', 'the client\'s own initialize');
  assert.ok(lp.every((p) => p.sid === undefined), JSON.stringify(lp.map((p) => p.sid)));
  assert.ok(lp.slice(1).every((p) => p.protocolVersion === '2025-03-26'), JSON.stringify(lp.map((p) => p.protocolVersion)));
  // the stateful one always gets its own id (never the gateway's) and 2025-11-25
  const sp = st.rec.posts.slice(1);
  assert.ok(sp.length >= 3);
  const own = sp[0].sid;
  assert.match(own, /^[0-9a-f-]{36}$/);
  assert.notEqual(own, transport.sessionId);
  assert.ok(sp.every((p) => p.sid === own && p.protocolVersion === '2025-11-25'));
  assert.ok(!transport.sessionId.includes(own), 'the backend session id is sealed, not visible');

  // DELETE goes to the stateful server only
  await transport.terminateSession();
  assert.equal(st.rec.deletes, 1);
  assert.equal(legacy.rec.deletes, 0);
});

test('GET: backends answering 405 are asked once; a stream that ends at once is reopened 3 times, then no more; the client stream stays open', { timeout: T(30_000) }, async () => {
  const a = await startHand({ name: 'a', get: '405' });
  const b = await startHand({ name: 'b', get: '405', version: '2025-03-26' });
  const c = await startHand({ name: 'c', get: 'end', stateful: true });
  const g = await gateway({ a, b, c }, { AIGW_MCP_HEARTBEAT_MS: '300' });
  let clientGets = 0;
  const countingFetch = (url, init) => {
    if ((init?.method ?? 'GET') === 'GET') clientGets++;
    return fetch(url, init);
  };
  const { client } = await connect(g, { fetch: countingFetch });
  assert.ok(await until(() => a.rec.gets === 1 && b.rec.gets === 1 && c.rec.gets >= 1), 'each backend asked for its stream');
  // c's stream was established and ended: reopened after the default 1 s, three times in a row
  // without a message, then left alone
  assert.ok(await until(() => c.rec.gets === 4, T(15_000)), `c asked ${c.rec.gets} times`);
  const log = c.rec.getLog;
  for (let i = 1; i < log.length; i++) assert.ok(log[i].at - log[i - 1].at >= 900, `reopen ${i} after ${log[i].at - log[i - 1].at} ms`);
  assert.ok(log.every((x) => x.lastEventId === undefined), 'no event id seen, no Last-Event-ID');
  await sleep(T(2000));
  assert.deepEqual([a.rec.gets, b.rec.gets, c.rec.gets], [1, 1, 4], 'no backend asked again');
  assert.match(g.stderr, /backend c: GET stream reopened 3 times in a row without a message; not reopened again/);
  assert.equal(clientGets, 1, 'the client\'s stream was never ended (it would have reconnected)');
  // the session still serves calls
  assert.equal((await client.callTool({ name: 'c__greet', arguments: { who: 'x' } })).content[0].text, 'c greets x');
});

// One notifications/message event, as a backend's GET stream carries it.
const logEvent = (id, data) => `${id ? `id: ${id}\n` : ''}event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0',
  method: 'notifications/message', params: { level: 'info', data } })}\n\n`;

test('GET: a backend stream that ends is reopened after its retry: with Last-Event-ID, in the client\'s same stream; a reopen answered 405 is the last', { timeout: T(30_000) }, async () => {
  // ender: its first stream says "one" (id g1, retry: 150) and ends; the reopen says "two" and stays open
  const ender = await startHand({ name: 'ender', stateful: true, get: (req, res, rec) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (rec.gets === 1) {
      rec.endedAt = Date.now();
      res.end(`retry: 150\n${logEvent('g1', 'one')}`);
    } else if (rec.gets === 2) {
      res.write(logEvent('g2', 'two'));
    } else {
      res.end();
    }
  } });
  // refuser: its first stream says "three" without an id and ends (cut); the reopen, after the
  // default 1 s and without Last-Event-ID, gets 405
  const refuser = await startHand({ name: 'refuser', get: (req, res, rec) => {
    if (rec.gets === 1) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(logEvent(null, 'three'));
      setTimeout(() => res.socket.destroy(), 50);
    } else {
      res.writeHead(405).end();
    }
  } });
  const g = await gateway({ ender, refuser }, { AIGW_MCP_HEARTBEAT_MS: '300' });
  let clientGets = 0;
  const countingFetch = (url, init) => {
    if ((init?.method ?? 'GET') === 'GET') clientGets++;
    return fetch(url, init);
  };
  const client = new Client({ name: 'e2e-quirks', version: '1.0.0' });
  const said = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { said.push(n.params.data); });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${g.url}/mcp`), { fetch: countingFetch }));
  cleanups.push(async () => client.close());

  assert.ok(await until(() => said.includes('one') && said.includes('two') && said.includes('three'), T(10_000)), JSON.stringify(said));
  assert.ok(said.indexOf('one') < said.indexOf('two'));
  assert.deepEqual(ender.rec.getLog.map((x) => x.lastEventId), [undefined, 'g1'], 'the reopen resumed from the last event id');
  const waited = ender.rec.getLog[1].at - ender.rec.endedAt;
  assert.ok(waited >= 140, `reopened ${waited} ms after the end (retry: 150)`);
  assert.ok(await until(() => refuser.rec.gets === 2, T(10_000)), 'the cut stream was reopened');
  assert.equal(refuser.rec.getLog[1].lastEventId, undefined, 'no id seen: no Last-Event-ID');
  assert.ok(refuser.rec.getLog[1].at - refuser.rec.getLog[0].at >= 900, 'the default 1 s');
  await sleep(T(2500));
  assert.equal(refuser.rec.gets, 2, 'a reopen answered 405 is not followed by another');
  assert.equal(ender.rec.gets, 2, 'the reopened stream is still open');
  assert.match(g.stderr, /backend refuser: GET stream not reopened \(HTTP 405\)/);
  assert.equal(clientGets, 1, 'the client\'s stream was never ended');
});

test('GET: pending reopens end with the client, the route timeout and SIGTERM (prompt exit, nothing left behind)', { timeout: T(30_000) }, async () => {
  // every stream of lazy says one thing and ends, asking for 60 s (capped at 30 s) before the reopen
  const lazy = await startHand({ name: 'lazy', get: (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(`retry: 60000\n${logEvent('l1', 'hi')}`);
  } });
  const other = await startHand({ name: 'other' });
  const g = await startGateway({ args: ['--request-timeout', '3s', '--mcp-json', JSON.stringify({ mcpServers: {
    lazy: { url: `http://127.0.0.1:${lazy.port}/mcp` }, other: { url: `http://127.0.0.1:${other.port}/mcp` } } })] });
  cleanups.push(async () => { lazy.close(); other.close(); await g.close(); });
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
  const r = await rawPost(`${g.url}/mcp`, init);
  const hdr = { accept: 'text/event-stream', 'mcp-session-id': r.headers.get('mcp-session-id'), 'mcp-protocol-version': '2025-11-25' };
  const open = async () => {
    const ac = new AbortController();
    const res = await fetch(`${g.url}/mcp`, { headers: hdr, signal: ac.signal });
    assert.equal(res.status, 200);
    const text = res.text().catch(() => 'aborted'); // resolves when the stream ends
    return { ac, text };
  };
  // 1. the client leaves while the reopen waits
  const s1 = await open();
  assert.ok(await until(() => lazy.rec.gets === 1));
  await sleep(200);
  s1.ac.abort();
  assert.equal(await s1.text, 'aborted');
  // 2. the route timeout (3 s) ends a stream whose reopen waits
  const t0 = Date.now();
  const s2 = await open();
  assert.ok(await until(() => lazy.rec.gets === 2));
  assert.match(await s2.text, /"data":"hi"/);
  assert.ok(Date.now() - t0 < T(10_000), 'the route timeout ended the stream, not the 30 s reopen');
  // 3. SIGTERM while a reopen waits
  const s3 = await open();
  assert.ok(await until(() => lazy.rec.gets === 3));
  await sleep(200);
  const t1 = Date.now();
  const ex = await g.stop({ timeoutMs: T(10_000) });
  assert.equal(ex.code, 0);
  assert.ok(Date.now() - t1 < T(5000), `exit took ${Date.now() - t1} ms`);
  await s3.text;
  assertNoSanitizerReport(g);
  assert.equal(lazy.rec.gets, 3, 'no reopen was ever made');
});

test('SSE variants: CRLF lines, comments, retry:, multi-line data, priming events, no event name', async () => {
  // Each answer: a priming event (id, retry, empty data), a comment, then the message split over
  // two data: lines (joined with "\n" it is the same JSON) with CRLF line ends.
  const crlf = (json) => {
    const cut = json.indexOf(',"result"');
    const text = `id: p-0\r\nretry: 1000\r\ndata: \r\n\r\n: a comment\r\nid: p-1\r\ndata: ${json.slice(0, cut)}\r\ndata: ${json.slice(cut)}\r\n\r\n`;
    return ['text/event-stream; charset=utf-8', text];
  };
  // bare-CR line ends and an event without "event: message", under application/json
  const cr = (json) => ['application/json', `:\rdata:${json}\r\r`];
  const x = await startHand({ name: 'x', frame: crlf, version: '2025-11-25' });
  const y = await startHand({ name: 'y', frame: cr, stateful: true });
  const g = await gateway({ x, y });
  const { client } = await connect(g); // initialize answers are framed the same way
  const names = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(names, ['x__greet', 'y__greet']);
  assert.equal((await client.callTool({ name: 'x__greet', arguments: { who: 'crlf' } })).content[0].text, 'x greets crlf');
  assert.equal((await client.callTool({ name: 'y__greet', arguments: { who: 'cr' } })).content[0].text, 'y greets cr');
});

test('2025-11-25 polling: the backend closes the POST stream before the result; the gateway resumes it after retry: with GET + Last-Event-ID', { timeout: T(20_000) }, async () => {
  const st = await startStateful({ retryInterval: 150 });
  const other = await startHand({ name: 'other' });
  const g = await gateway({ st, other });
  const { client } = await connect(g);
  const progress = [];
  const gets0 = st.rec.gets.length;
  const r = await client.callTool({ name: 'st__poll_me', arguments: {} }, undefined,
    { onprogress: (p) => progress.push(p.progress), timeout: T(10_000) });
  assert.equal(r.content[0].text, 'polled result');
  assert.deepEqual(progress, [1, 2], 'the progress sent before and after the cut, in order, on the one client stream');
  // the backend saw one GET resuming its POST stream, made after the retry time, from the last event it sent there
  const resumed = st.rec.gets.slice(gets0).filter((x) => x.lastEventId);
  assert.equal(resumed.length, 1, JSON.stringify(resumed));
  assert.ok(resumed[0].at - st.rec.closedAt >= 140, `resumed ${resumed[0].at - st.rec.closedAt} ms after the cut`);
  const store = st.rec.stores.at(-1);
  const last = store.events.find((e) => e.eventId === resumed[0].lastEventId);
  assert.equal(last?.message.method, 'notifications/progress', 'resumed after the first progress event');
  assert.equal(resumed[0].sid, st.rec.posts.at(-1).sid);
  // the session is fine afterwards
  assert.equal((await client.callTool({ name: 'st__hello', arguments: { who: 'again' } })).content[0].text, 'hello again from stateful');
});

// A server that cuts every tools/call stream after a priming event and answers the resuming GET
// as mode says: 'empty' (a stream that ends at once, every time), '405'.
function startCutter(mode) {
  const rec = { gets: [] };
  const srv = http.createServer(async (req, res) => {
    if (req.method === 'GET') {
      rec.gets.push({ at: Date.now(), lastEventId: req.headers['last-event-id'] });
      if (mode === 'empty' && req.headers['last-event-id']) {
        res.writeHead(200, { 'content-type': 'text/event-stream' }).end(': nothing new\n\n');
      } else if (mode === 'chatty' && req.headers['last-event-id']) {
        // a message, but no new event id: the call does not move on in the backend's store
        res.writeHead(200, { 'content-type': 'text/event-stream' }).end(logEvent(null, 'still working'));
      } else {
        res.writeHead(405).end();
      }
      return;
    }
    if (req.method === 'DELETE') {
      res.writeHead(200).end();
      return;
    }
    const msg = JSON.parse(await readBody(req));
    if (msg.id === undefined) {
      res.writeHead(202).end();
      return;
    }
    const answer = (result) => res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'cut-1' })
      .end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
    if (msg.method === 'initialize') {
      answer({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'cutter', version: '1' } });
    } else if (msg.method === 'tools/list') {
      answer({ tools: [{ name: 'cut', inputSchema: { type: 'object' } }] });
    } else {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('id: c-1\nretry: 50\ndata: \n\n');
    }
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    srv, port: srv.address().port, rec,
    close() { srv.close(); srv.closeAllConnections?.(); },
  })));
}

test('polling bounds: a backend whose resumed streams bring nothing (or messages without a new event id) is asked 3 times, a 405 once; then a JSON-RPC error', { timeout: T(20_000) }, async () => {
  const empty = await startCutter('empty');
  const refuse = await startCutter('405');
  const chatty = await startCutter('chatty');
  const g = await gateway({ empty, refuse, chatty });
  const { client } = await connect(g);
  await sleep(100); // the client's GET stream is open (each backend asked once, 405)
  const g0 = [empty.rec.gets.length, refuse.rec.gets.length];
  const t0 = Date.now();
  await assert.rejects(client.callTool({ name: 'empty__cut', arguments: {} }, undefined, { timeout: T(10_000) }),
    (e) => e.code === -32603 && /ended before the response/.test(e.message));
  const resumes = empty.rec.gets.slice(g0[0]);
  assert.deepEqual(resumes.map((x) => x.lastEventId), ['c-1', 'c-1', 'c-1']);
  for (let i = 1; i < resumes.length; i++) assert.ok(resumes[i].at - resumes[i - 1].at >= 45, 'retry: honoured between reconnects');
  assert.ok(Date.now() - t0 < T(5000));
  await assert.rejects(client.callTool({ name: 'refuse__cut', arguments: {} }, undefined, { timeout: T(10_000) }),
    (e) => e.code === -32603);
  assert.deepEqual(refuse.rec.gets.slice(g0[1]).map((x) => x.lastEventId), ['c-1']);
  assert.ok(await until(() => /backend refuse: stream not resumed \(HTTP 405\)/.test(g.stderr)), g.stderr);
  const c0 = chatty.rec.gets.length;
  await assert.rejects(client.callTool({ name: 'chatty__cut', arguments: {} }, undefined, { timeout: T(10_000) }),
    (e) => e.code === -32603 && /ended before the response/.test(e.message));
  assert.deepEqual(chatty.rec.gets.slice(c0).map((x) => x.lastEventId), ['c-1', 'c-1', 'c-1'],
    'messages without a new event id are no progress: 3 resumes, not an endless loop');
});

test('GET: a backend that replays the same event (same id, retry: 0) at every reopen is reopened 3 times, no faster than 100 ms', { timeout: T(20_000) }, async () => {
  const replayer = await startHand({ name: 'replayer', stateful: true, get: (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(`retry: 0\n${logEvent('same', 'connected')}`);
  } });
  const g = await gateway({ replayer }, { AIGW_MCP_HEARTBEAT_MS: '300' });
  await connect(g);
  assert.ok(await until(() => replayer.rec.gets === 4, T(10_000)), `asked ${replayer.rec.gets} times`);
  await sleep(T(1500));
  assert.equal(replayer.rec.gets, 4, 'no loop: 1 + 3 reopens, then none');
  const log = replayer.rec.getLog;
  for (let i = 1; i < log.length; i++) assert.ok(log[i].at - log[i - 1].at >= 90, `reopen ${i} after ${log[i].at - log[i - 1].at} ms`);
  assert.deepEqual(log.map((x) => x.lastEventId), [undefined, 'same', 'same', 'same']);
});

test('a 400 naming no request and speaking of the session is a lost session (404); other 400s are errors of the call', { timeout: T(20_000) }, async () => {
  const h = await startHand({ name: 'h', stateful: true });
  const other = await startHand({ name: 'other' });
  const g = await gateway({ h, other });
  const { client, transport } = await connect(g);
  await assert.rejects(client.callTool({ name: 'h__rpc400', arguments: {} }), (e) => e.code === -32602 && /bad session parameter/.test(e.message));
  await assert.rejects(client.callTool({ name: 'h__raw400', arguments: {} }), (e) => e.code === -32603);
  assert.equal((await client.callTool({ name: 'h__greet', arguments: { who: 'still' } })).content[0].text, 'h greets still');
  const lost = await rawPost(`${g.url}/mcp`, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'h__lost400', arguments: {} } },
    { 'mcp-session-id': transport.sessionId, 'mcp-protocol-version': '2025-11-25' });
  assert.equal(lost.status, 404, lost.text);
  // the stateless backend has no session to lose: the same answer from it is an error of the call
  const o = await rawPost(`${g.url}/mcp`, { jsonrpc: '2.0', id: 10, method: 'tools/call', params: { name: 'other__lost400', arguments: {} } },
    { 'mcp-session-id': transport.sessionId, 'mcp-protocol-version': '2025-11-25' });
  assert.equal(o.status, 200, o.text);
  assert.equal(o.json.error.code, -32603);
});

test('initialize: backends failing it (HTTP 500, JSON-RPC error) are left out and never asked again', { timeout: T(20_000) }, async () => {
  const bad500 = await startHand({ name: 'bad500', init: '500' });
  const badrpc = await startHand({ name: 'badrpc', init: 'rpc-error' });
  const good = await startStateful();
  const g = await gateway({ bad500, badrpc, good });
  const { client, transport } = await connect(g);
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['good__hello', 'good__poll_me']);
  assert.equal((await client.callTool({ name: 'good__hello', arguments: { who: 'B' } })).content[0].text, 'hello B from stateful');
  // a left-out backend's names are unknown to the session
  await assert.rejects(client.callTool({ name: 'bad500__greet', arguments: {} }), (e) => e.code === -32602);
  await assert.rejects(client.callTool({ name: 'badrpc__greet', arguments: {} }), (e) => e.code === -32602);
  const res = await fetch(`${g.url}/mcp`, { headers: { accept: 'text/event-stream', 'mcp-session-id': transport.sessionId,
    'mcp-protocol-version': '2025-11-25' } });
  assert.equal(res.status, 200);
  await res.body.cancel();
  await sleep(100);
  assert.deepEqual(bad500.rec.posts.map((p) => p.msg.method), ['initialize']);
  assert.deepEqual(badrpc.rec.posts.map((p) => p.msg.method), ['initialize']);
  assert.equal(bad500.rec.gets + badrpc.rec.gets, 0);
  assert.match(g.stderr, /backend bad500: unexpected HTTP status \(HTTP 500\)/);
  assert.match(g.stderr, /backend badrpc: initialize failed; left out of the session/);
});

test('a backend that loses the session (restart) makes the whole session 404; a new initialize works', { timeout: T(20_000) }, async () => {
  const st = await startStateful();
  const other = await startHand({ name: 'other' });
  const g = await gateway({ st, other });
  const { client, transport } = await connect(g);
  assert.equal((await client.callTool({ name: 'st__hello', arguments: { who: 'before' } })).content[0].text, 'hello before from stateful');
  const sid = transport.sessionId;
  st.restart();
  const hdr = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  const url = `${g.url}/mcp`;
  // a call routed to it, a list fanned out to both, a notification, the GET stream: all 404
  const call = await rawPost(url, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'st__hello', arguments: { who: 'x' } } }, hdr);
  assert.equal(call.status, 404, call.text);
  assert.equal(call.json.error.code, -32000);
  assert.equal((await rawPost(url, { jsonrpc: '2.0', id: 6, method: 'tools/list' }, hdr)).status, 404);
  assert.equal((await rawPost(url, { jsonrpc: '2.0', method: 'notifications/roots/list_changed' }, hdr)).status, 404);
  const get = await fetch(url, { headers: { accept: 'text/event-stream', ...hdr } });
  assert.equal(get.status, 404);
  await get.text();
  // The SDK client sees the 404 as an error of its call (it is the application's turn to
  // initialize again): a new client starts a new session that works with the restarted server.
  await assert.rejects(client.callTool({ name: 'st__hello', arguments: { who: 'y' } }), (e) => /404/.test(String(e.code ?? e.message)));
  const { client: again, transport: t2 } = await connect(g);
  assert.notEqual(t2.sessionId, sid);
  assert.equal((await again.callTool({ name: 'st__hello', arguments: { who: 'after' } })).content[0].text, 'hello after from stateful');
  assert.equal((await again.callTool({ name: 'other__greet', arguments: { who: 'z' } })).content[0].text, 'other greets z');
});

// The fan-out timeout: initialize, the lists and logging/setLevel ask every backend and answer
// once all did, so each backend gets its own deadline (1500 ms here, 15 s by default) instead of
// the route timeout (30 minutes); a backend that misses it is left out like one that failed.
const FANOUT_MS = 1500;

test('fan-out timeout: a backend that never answers initialize is left out after the timeout, its request cut; the session works with the others', { timeout: T(30_000) }, async () => {
  const hung = await startHand({ name: 'hung', hang: ['initialize'] });
  const good = await startHand({ name: 'good', stateful: true });
  const g = await gateway({ hung, good }, { AIGW_MCP_FANOUT_TIMEOUT_MS: String(FANOUT_MS) });
  const t0 = Date.now();
  const { client } = await connect(g);
  const took = Date.now() - t0;
  assert.ok(took >= FANOUT_MS - 100, `initialize waited for the slow backend up to the timeout (${took} ms)`);
  assert.ok(took < FANOUT_MS + T(4000), `initialize answered within a bound (${took} ms)`);
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['good__greet']);
  assert.equal((await client.callTool({ name: 'good__greet', arguments: { who: 'Ada' } })).content[0].text, 'good greets Ada');
  await assert.rejects(client.callTool({ name: 'hung__greet', arguments: {} }), (e) => e.code === -32602);
  // the held request was cancelled (connection closed) at the timeout, and never asked again
  assert.equal(hung.rec.held.length, 1);
  assert.ok(await until(() => hung.rec.held[0].closedAt !== null, T(2000)), 'the upstream request is cancelled');
  assert.ok(hung.rec.held[0].closedAt - hung.rec.held[0].at < FANOUT_MS + T(2000));
  assert.deepEqual(hung.rec.posts.map((p) => p.msg.method), ['initialize']);
  assert.match(g.stderr, /backend hung: initialize timed out \(total timeout; fan-out timeout 1500 ms\); left out of the session/);

  // every backend timing out: the error initialize gives when none could be initialized
  const one = await startHand({ name: 'one', hang: ['initialize'] });
  const two = await startHand({ name: 'two', hang: ['initialize'] });
  const g2 = await gateway({ one, two }, { AIGW_MCP_FANOUT_TIMEOUT_MS: String(FANOUT_MS) });
  const t1 = Date.now();
  const r = await rawPost(`${g2.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  assert.ok(Date.now() - t1 < FANOUT_MS + T(4000));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.error.code, -32603);
  assert.match(r.json.error.message, /no MCP backend of this route could be initialized/);
  assert.equal(r.headers.get('mcp-session-id'), null);
});

test('fan-out timeout (--mcp-fanout-timeout): a backend hanging on tools/list is missing from the merged list after the timeout; routed calls meanwhile, and a call longer than the timeout, are not cut', { timeout: T(40_000) }, async () => {
  const stuck = await startHand({ name: 'stuck', hang: ['tools/list', 'prompts/list'] });
  const good = await startHand({ name: 'good' });
  const g = await gateway({ stuck, good }, {}, ['--mcp-fanout-timeout', `${FANOUT_MS}ms`]);
  const { client } = await connect(g);
  const t0 = Date.now();
  let listedAt = null;
  const listing = client.listTools().then((r) => { listedAt = Date.now(); return r; });
  // a routed call to the good backend is answered while the list still waits
  assert.equal((await client.callTool({ name: 'good__greet', arguments: { who: 'meanwhile' } })).content[0].text, 'good greets meanwhile');
  assert.equal(listedAt, null, 'the call was answered before the list');
  const tools = await listing;
  const took = listedAt - t0;
  assert.deepEqual(tools.tools.map((t) => t.name), ['good__greet']);
  assert.ok(took >= FANOUT_MS - 100 && took < FANOUT_MS + T(4000), `tools/list answered after the timeout (${took} ms)`);
  assert.ok(await until(() => stuck.rec.held.length === 1 && stuck.rec.held[0].closedAt !== null, T(2000)),
    'the stuck request is cancelled');
  assert.match(g.stderr, /backend stuck: tools\/list timed out \(total timeout; fan-out timeout 1500 ms\); its items are missing from the merged answer/);
  // the stuck backend stays in the session: its calls still work
  assert.equal((await client.callTool({ name: 'stuck__greet', arguments: { who: 'x' } })).content[0].text, 'stuck greets x');
  // every backend of a list timing out (the good one has no prompts: it fails at once): -32603
  await assert.rejects(client.listPrompts(), (e) => e.code === -32603);
  // a routed call longer than the fan-out timeout keeps the route timeout
  const t1 = Date.now();
  const slow = await client.callTool({ name: 'good__slow', arguments: { ms: 3000 } });
  assert.equal(slow.content[0].text, 'good greets nobody');
  assert.ok(Date.now() - t1 >= 3000);
  assert.equal(good.rec.posts.filter((p) => p.msg.method === 'tools/call').length, 2);
});

test('fan-out timeout settings: bad values are refused at start', { timeout: T(20_000) }, async () => {
  const mcp = ['--mcp-json', '{"mcpServers":{"a":{"url":"http://127.0.0.1:1/mcp"}}}'];
  const flag = runAigw(['run', ...mcp, '--mcp-fanout-timeout', '0s']);
  assert.equal(flag.code, 2, flag.stderr);
  assert.match(flag.stderr, /bad value for --mcp-fanout-timeout/);
  const env = runAigw(['run', ...mcp], { env: { AIGW_MCP_FANOUT_TIMEOUT_MS: '15s' } });
  assert.equal(env.code, 1, env.stderr);
  assert.match(env.stderr, /invalid AIGW_MCP_FANOUT_TIMEOUT_MS/);
  const big = runAigw(['run', ...mcp, '--mcp-fanout-timeout', '25h']);
  assert.equal(big.code, 1, big.stderr);
  assert.match(big.stderr, /invalid MCP fan-out timeout/);
});
