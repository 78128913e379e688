// A fake OpenAI upstream (node:http or node:https on 127.0.0.1:0). It records every request it
// receives (method, path, headers, raw body bytes, how the exchange ended) so tests can assert what
// the gateway sent, and answers each request with the next queued "spec" (or a default that
// echoes), which can replay recorded bodies, stream SSE with delays, fail mid-stream, compress,
// answer non-JSON errors, hang, read slowly or generate a large stream under backpressure.
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { fixture } from './testdata.mjs';

/** SSE text of data objects, optionally followed by data: [DONE]. */
export function sseOf(objects, { done = true } = {}) {
  let s = '';
  for (const o of objects) s += `data: ${typeof o === 'string' ? o : JSON.stringify(o)}\n\n`;
  if (done) s += 'data: [DONE]\n\n';
  return s;
}

/** Splits SSE bytes into one Buffer per event (each keeps its terminating blank line). */
export function splitSSE(buf) {
  const b = Buffer.from(buf);
  const out = [];
  let start = 0;
  for (let i = 0; i + 1 < b.length; i++) {
    if (b[i] === 0x0a && b[i + 1] === 0x0a) {
      out.push(b.subarray(start, i + 2));
      start = i + 2;
      i++;
    }
  }
  if (start < b.length) out.push(b.subarray(start));
  return out;
}

/** Splits bytes into n roughly equal pieces (n >= 1). */
export function splitN(buf, n) {
  const b = Buffer.from(buf);
  const out = [];
  const size = Math.max(1, Math.ceil(b.length / n));
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

export function compress(encoding, buf) {
  if (encoding === 'gzip') return zlib.gzipSync(buf);
  if (encoding === 'br') return zlib.brotliCompressSync(buf);
  if (encoding === 'deflate') return zlib.deflateSync(buf);
  throw new Error(`unknown encoding ${encoding}`);
}

/** Compresses SSE events as one stream, flushed after every event, so it can be sent piece by piece. */
export async function compressStreaming(encoding, events) {
  const z = encoding === 'gzip' ? zlib.createGzip() : zlib.createBrotliCompress();
  const pieces = [];
  z.on('data', (d) => pieces.push(d));
  const flushKind = encoding === 'gzip' ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.BROTLI_OPERATION_FLUSH;
  const out = [];
  for (const ev of events) {
    z.write(ev);
    await new Promise((resolve) => z.flush(flushKind, resolve));
    out.push(Buffer.concat(pieces.splice(0)));
  }
  z.end();
  await once(z, 'end');
  const tail = Buffer.concat(pieces.splice(0));
  if (tail.length) out.push(tail);
  return out.filter((b) => b.length > 0);
}

function waitDrain(res) {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

const RESPONSE_KEYS = ['body', 'sse', 'chunks', 'generate', 'hang', 'destroyImmediately'];

function defaultResponse(rec) {
  let body = null;
  try { body = JSON.parse(rec.body.toString('utf8')); } catch { body = null; }
  const model = (body && typeof body.model === 'string') ? body.model : 'unknown';
  const path = rec.path.split('?')[0];
  if (path.endsWith('/chat/completions')) {
    const msgs = (body && Array.isArray(body.messages)) ? body.messages : [];
    const last = msgs.length ? msgs[msgs.length - 1] : null;
    const text = last && typeof last.content === 'string' ? `echo: ${last.content}` : 'echo';
    const usage = { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 };
    if (body && body.stream) {
      const base = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1700000000, model };
      const events = [
        { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
        { ...base, choices: [{ index: 0, delta: { content: text }, finish_reason: null }] },
        { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
      ];
      if (body.stream_options && body.stream_options.include_usage) events.push({ ...base, choices: [], usage });
      return { contentType: 'text/event-stream', chunks: splitSSE(sseOf(events)) };
    }
    return {
      body: {
        id: 'chatcmpl-fake', object: 'chat.completion', created: 1700000000, model,
        choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
        usage,
      },
    };
  }
  if (path.endsWith('/embeddings')) return { body: fixture('embeddings_float.json') };
  if (path.endsWith('/completions')) return { body: fixture('completion.json') };
  if (path.endsWith('/images/generations')) return { body: fixture('image.json') };
  return { status: 404, body: { error: { message: `fake: no route for ${rec.method} ${rec.path}`, type: 'invalid_request_error', param: null, code: null } } };
}

export class FakeOpenAI {
  constructor({ tls = null } = {}) {
    this.tls = tls;
    this.requests = [];
    this.queue = [];
    this.defaultSpec = null;
    this.sockets = new Set();
    this.connections = 0;
    this.hanging = new Set();
    const handler = (req, res) => this._handle(req, res);
    const opts = { keepAliveTimeout: 120_000, headersTimeout: 60_000, requestTimeout: 0, maxHeaderSize: 1 << 20 };
    this.server = tls ? https.createServer({ ...opts, key: tls.key, cert: tls.cert }, handler) : http.createServer(opts, handler);
    this.server.on('connection', (s) => {
      this.connections++;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('secureConnection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen() {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = this.server.address().port;
    this.origin = `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
    return this;
  }

  /** Queue response specs (objects or functions (rec) => spec), used in order, one per request. */
  enqueue(...specs) {
    this.queue.push(...specs);
    return this;
  }

  /** Forget recorded requests and queued specs. */
  reset() {
    this.requests = [];
    this.queue = [];
    this.defaultSpec = null;
  }

  get abortedCount() {
    return this.requests.filter((r) => r.aborted).length;
  }

  last() {
    return this.requests[this.requests.length - 1];
  }

  /** Waits until pred(this) is true; throws after timeoutMs. */
  async waitFor(pred, timeoutMs = 5000, what = 'condition') {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this)) {
      if (Date.now() > deadline) throw new Error(`fake upstream: timed out waiting for ${what}`);
      await sleep(10);
    }
  }

  async waitForRequests(n, timeoutMs = 5000) {
    await this.waitFor((f) => f.requests.filter((r) => r.bodyComplete).length >= n, timeoutMs, `${n} complete request(s)`);
    return this.requests;
  }

  async close() {
    for (const res of this.hanging) { try { res.destroy(); } catch { /* ignore */ } }
    for (const s of this.sockets) s.destroy();
    this.server.closeAllConnections?.();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  async _handle(req, res) {
    const rec = {
      seq: this.requests.length,
      method: req.method,
      path: req.url,
      httpVersion: req.httpVersion,
      headers: { ...req.headers },
      rawHeaders: req.rawHeaders.slice(),
      body: Buffer.alloc(0),
      bodyComplete: false,
      aborted: false,
      finished: false,
      bytesWritten: 0,
      servername: req.socket.servername || null,
      remotePort: req.socket.remotePort,
      receivedAt: Date.now(),
    };
    this.requests.push(rec);
    let spec = this.queue.length ? this.queue.shift() : this.defaultSpec;
    res.on('close', () => {
      rec.closedAt = Date.now();
      if (!res.writableFinished) rec.aborted = true;
      this.hanging.delete(res);
    });
    res.on('finish', () => { rec.finished = true; });

    // Body reading (optionally slow).
    const chunks = [];
    const readDone = (async () => {
      try {
        if (spec && typeof spec === 'object' && spec.slowRead) {
          const { bytesPerTick = 1024, tickMs = 50 } = spec.slowRead;
          let got = 0;
          await new Promise((resolve, reject) => {
            req.on('data', (c) => {
              chunks.push(c);
              got += c.length;
              if (got >= bytesPerTick) {
                got = 0;
                req.pause();
                setTimeout(() => req.resume(), tickMs);
              }
            });
            req.on('end', resolve);
            req.on('error', reject);
            req.on('close', () => (req.readableEnded ? resolve() : reject(new Error('closed'))));
          });
        } else {
          for await (const c of req) chunks.push(c);
        }
        rec.bodyComplete = true;
      } catch {
        rec.bodyError = true;
      }
      rec.body = Buffer.concat(chunks);
    })();
    await readDone;
    if (!rec.bodyComplete) return;
    // Subclasses (fake Anthropic / Bedrock) inspect what arrived, e.g. verify a signature.
    if (this.inspect) {
      try { this.inspect(rec, req); } catch (e) { rec.inspectError = String(e && e.stack || e); }
    }

    if (typeof spec === 'function') spec = await spec(rec, req, res);
    if (spec === 'handled') return;
    const dflt = (r) => (this.defaultResponder ? this.defaultResponder(r) : defaultResponse(r));
    if (!spec) spec = dflt(rec);
    else if (!RESPONSE_KEYS.some((k) => spec[k] !== undefined)) spec = { ...dflt(rec), ...spec };
    rec.spec = spec;
    try {
      await this._respond(spec, rec, req, res);
    } catch (e) {
      rec.respondError = String(e && e.message);
      try { res.destroy(); } catch { /* ignore */ }
    }
  }

  async _respond(spec, rec, req, res) {
    if (spec.initialDelayMs) await sleep(spec.initialDelayMs);
    if (spec.hang) { this.hanging.add(res); return; }
    if (spec.destroyImmediately) { req.socket.destroy(); return; }
    const status = spec.status || 200;
    const headers = { ...(spec.headers || {}) };
    if (spec.generate) return this._generate(spec, rec, res, status, headers);

    let chunks;
    let stream = false;
    if (spec.chunks) {
      chunks = spec.chunks.map((c) => Buffer.from(c));
      stream = true;
    } else if (spec.sse !== undefined) {
      chunks = splitSSE(typeof spec.sse === 'string' || Buffer.isBuffer(spec.sse) ? spec.sse : sseOf(spec.sse));
      stream = true;
    } else {
      let b = spec.body;
      if (b === undefined || b === null) b = Buffer.alloc(0);
      else if (!(typeof b === 'string' || Buffer.isBuffer(b))) b = JSON.stringify(b);
      chunks = [Buffer.from(b)];
    }
    const ct = spec.contentType !== undefined ? spec.contentType : (stream ? 'text/event-stream' : 'application/json');
    if (ct) headers['content-type'] = ct;
    if (spec.encoding && !spec.precompressed) {
      if (stream) chunks = await compressStreaming(spec.encoding, chunks);
      else chunks = [compress(spec.encoding, Buffer.concat(chunks))];
    }
    if (spec.encoding) headers['content-encoding'] = spec.encoding;
    rec.sentChunks = chunks;
    rec.sentBody = Buffer.concat(chunks);
    const useChunked = spec.chunked ?? stream;
    if (!useChunked) headers['content-length'] = String(rec.sentBody.length);
    if (spec.connectionClose) headers.connection = 'close';
    res.writeHead(status, headers);
    if (useChunked) res.flushHeaders();
    for (let i = 0; i < chunks.length; i++) {
      if (spec.failAfterChunks !== undefined && i >= spec.failAfterChunks) {
        // Abrupt failure: the upstream connection dies mid-body.
        await sleep(spec.failDelayMs ?? 20);
        req.socket.destroy();
        return;
      }
      if (spec.hangAfterChunks !== undefined && i >= spec.hangAfterChunks) { this.hanging.add(res); return; }
      if (i > 0 && spec.delayMs) await sleep(spec.delayMs);
      if (res.destroyed) return;
      const ok = res.write(chunks[i]);
      rec.bytesWritten += chunks[i].length;
      if (!ok) await waitDrain(res);
    }
    if (spec.failAfterChunks !== undefined && spec.failAfterChunks >= chunks.length) {
      await sleep(spec.failDelayMs ?? 20);
      req.socket.destroy();
      return;
    }
    if (spec.hangAfterChunks !== undefined && spec.hangAfterChunks >= chunks.length) { this.hanging.add(res); return; }
    res.end();
  }

  // A large SSE stream written as fast as the connection accepts it (waits for 'drain'), so the
  // bytes written so far (rec.bytesWritten) show how far the gateway let the upstream run ahead.
  async _generate(spec, rec, res, status, headers) {
    const { totalBytes, eventBytes = 16 * 1024 } = spec.generate;
    headers['content-type'] = 'text/event-stream';
    res.writeHead(status, headers);
    const pad = 'x'.repeat(Math.max(1, eventBytes - 200));
    let n = 0;
    while (rec.bytesWritten < totalBytes) {
      if (res.destroyed) return;
      const ev = Buffer.from(`data: {"id":"chatcmpl-big","object":"chat.completion.chunk","created":1700000000,"model":"big","choices":[{"index":0,"delta":{"content":"${pad}"},"finish_reason":null}],"n":${n++}}\n\n`);
      const ok = res.write(ev);
      rec.bytesWritten += ev.length;
      if (!ok) await waitDrain(res);
    }
    const tail = Buffer.from(
      `data: {"id":"chatcmpl-big","object":"chat.completion.chunk","created":1700000000,"model":"big","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":${n},"total_tokens":${n + 1}}}\n\ndata: [DONE]\n\n`);
    res.write(tail);
    rec.bytesWritten += tail.length;
    rec.generatedEvents = n;
    res.end();
  }
}

export async function startFakeOpenAI(opts = {}) {
  const f = new FakeOpenAI(opts);
  await f.listen();
  return f;
}
