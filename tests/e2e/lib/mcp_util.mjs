// Helpers for the MCP end-to-end files that drive real MCP servers: server-everything started as a
// child process on 127.0.0.1, a recording pass-through proxy to see what the gateway sent it, an
// SSE reader for raw fetch streams, and small bounded waits.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { freePort, T } from './gateway.mjs';

export function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls cond every 10 ms; true once it holds, false after ms. */
export async function until(cond, ms = T(3000)) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}

/** Reads SSE from a fetch body reader until an event's data matches re; returns { id, data }
 * (id: the last event id seen so far on that stream). Bounded by ms. */
export async function readEvent(reader, state, re, ms = T(5000)) {
  const dec = new TextDecoder();
  const deadline = Date.now() + ms;
  for (;;) {
    let k;
    while ((k = state.buf.indexOf('\n\n')) >= 0) {
      const block = state.buf.slice(0, k);
      state.buf = state.buf.slice(k + 2);
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) state.id = line.slice(4);
        if (line.startsWith('data: ')) data += line.slice(6);
      }
      state.events = (state.events ?? 0) + 1;
      if (re.test(data)) return { id: state.id, data };
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no event matching ${re} within ${ms} ms; buffered: ${state.buf.slice(0, 300)}`);
    let timer;
    const timeout = new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`no event matching ${re} within ${ms} ms`)), left); });
    const { value, done } = await Promise.race([reader.read(), timeout]).finally(() => clearTimeout(timer));
    if (done) throw new Error('stream ended');
    state.buf += dec.decode(value, { stream: true });
  }
}

/** A raw JSON-RPC POST to an MCP endpoint; returns status, headers, text and parsed JSON (or null). */
export async function rawPost(url, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    signal: AbortSignal.timeout(T(15_000)),
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* SSE or empty */ }
  return { status: res.status, headers: res.headers, text, json };
}

/** The JSON-RPC messages of an SSE body (or the one JSON body). */
export function messagesOf(text) {
  try { return [JSON.parse(text)]; } catch { /* SSE */ }
  const out = [];
  for (const block of text.split(/\n\n/)) {
    const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
    if (data) out.push(JSON.parse(data));
  }
  return out;
}

const EVERYTHING_MAIN = fileURLToPath(new URL('../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url));

// server-everything listens on every interface (express app.listen(PORT)); this preamble pins
// net.Server#listen to 127.0.0.1 before loading it, so the tests open no port beyond loopback.
const PREAMBLE = `
import net from 'node:net';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...a) {
  if ((typeof a[0] === 'number' || /^[0-9]+$/.test(String(a[0]))) && typeof a[1] !== 'string') a.splice(1, 0, '127.0.0.1');
  return listen.apply(this, a);
};
process.argv = [process.argv[0], ${JSON.stringify(EVERYTHING_MAIN)}, 'streamableHttp'];
await import(${JSON.stringify(pathToFileURL(EVERYTHING_MAIN).href)});
`;

const children = new Set();
process.on('exit', () => {
  for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
});

/** Starts @modelcontextprotocol/server-everything (Streamable HTTP at /mcp) on a free loopback
 * port, or on port (a restart). Its environment holds only PATH and PORT: its get-env tool would
 * show anything else. Returns { port, proc, stderr, stop() }. */
export async function startEverything({ port } = {}) {
  port ??= await freePort();
  const proc = spawn(process.execPath, ['--input-type=module', '-e', PREAMBLE], {
    env: { PATH: process.env.PATH, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(proc);
  const ev = { port, proc, stderr: '' };
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => { children.delete(proc); resolve({ code, signal }); }));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server-everything did not start within ${T(15_000)} ms:\n${ev.stderr}`)), T(15_000));
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
      if (ev.stderr.length < 1 << 20) ev.stderr += d;
      if (/listening on port/.test(ev.stderr)) { clearTimeout(timer); resolve(); }
    });
    exited.then((x) => { clearTimeout(timer); reject(new Error(`server-everything exited ${JSON.stringify(x)}:\n${ev.stderr}`)); });
  });
  ev.stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  };
  return ev;
}

/** A pass-through HTTP proxy on 127.0.0.1 in front of port that records every request it relays
 * ({ method, sid, lastEventId, protocolVersion, msg }) and streams answers back as they come. */
export function startRecorder(port) {
  const seen = [];
  const srv = http.createServer(async (req, res) => {
    const body = await readBody(req);
    let msg = null;
    try { msg = body ? JSON.parse(body) : null; } catch { /* not JSON */ }
    seen.push({ method: req.method, sid: req.headers['mcp-session-id'], lastEventId: req.headers['last-event-id'],
      protocolVersion: req.headers['mcp-protocol-version'], msg });
    const headers = { ...req.headers };
    delete headers.connection;
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers }, (ur) => {
      const h = { ...ur.headers };
      delete h.connection;
      delete h['transfer-encoding'];
      res.writeHead(ur.statusCode, h);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy()); // the gateway left: so does the request to the server
    up.end(body);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    srv, port: srv.address().port, seen,
    close() { srv.close(); srv.closeAllConnections?.(); },
  })));
}
