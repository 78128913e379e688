// Raw HTTP/1.1 over node:net for tests that need exact control of the bytes on the wire
// (pipelining, chunked request bodies, Expect: 100-continue, oversized heads, slow clients).
import net from 'node:net';
import { once } from 'node:events';
import { T, within } from './gateway.mjs';

/** Incremental parser of HTTP/1.1 responses (content-length, chunked, or until close). */
export class ResponseParser {
  constructor() {
    this.buf = Buffer.alloc(0);
    this.responses = [];
    this.cur = null;
    this.closed = false;
  }

  push(data) {
    this.buf = Buffer.concat([this.buf, data]);
    this._parse();
  }

  end() {
    this.closed = true;
    if (this.cur && this.cur.mode === 'close') {
      this.cur.body = Buffer.concat([this.cur.body, this.buf]);
      this.buf = Buffer.alloc(0);
      this.cur.complete = true;
      this.responses.push(this.cur);
      this.cur = null;
    }
  }

  _parse() {
    for (;;) {
      if (!this.cur) {
        const idx = this.buf.indexOf('\r\n\r\n');
        if (idx < 0) return;
        const head = this.buf.subarray(0, idx).toString('latin1');
        this.buf = this.buf.subarray(idx + 4);
        const lines = head.split('\r\n');
        const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
        if (!m) throw new Error(`bad status line: ${lines[0]}`);
        const headers = {};
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          const k = l.slice(0, c).trim().toLowerCase();
          const v = l.slice(c + 1).trim();
          headers[k] = headers[k] !== undefined ? `${headers[k]}, ${v}` : v;
        }
        const status = Number(m[2]);
        const r = { version: m[1], status, reason: m[3] || '', headers, body: Buffer.alloc(0), complete: false, rawHead: head };
        if (status >= 100 && status < 200) {
          r.complete = true;
          this.responses.push(r);
          continue;
        }
        if (status === 204 || status === 304 || this.headOnly) {
          r.complete = true;
          this.responses.push(r);
          continue;
        }
        if ((headers['transfer-encoding'] || '').toLowerCase().includes('chunked')) {
          r.mode = 'chunked';
          r.chunkState = 'size';
        } else if (headers['content-length'] !== undefined) {
          r.mode = 'length';
          r.remaining = Number(headers['content-length']);
        } else {
          r.mode = 'close';
        }
        this.cur = r;
      }
      const r = this.cur;
      if (r.mode === 'length') {
        const take = Math.min(r.remaining, this.buf.length);
        r.body = Buffer.concat([r.body, this.buf.subarray(0, take)]);
        this.buf = this.buf.subarray(take);
        r.remaining -= take;
        if (r.remaining > 0) return;
      } else if (r.mode === 'chunked') {
        let done = false;
        for (;;) {
          if (r.chunkState === 'size') {
            const i = this.buf.indexOf('\r\n');
            if (i < 0) return;
            const size = parseInt(this.buf.subarray(0, i).toString('latin1').split(';')[0], 16);
            this.buf = this.buf.subarray(i + 2);
            if (size === 0) { r.chunkState = 'trailer'; continue; }
            r.chunkLeft = size;
            r.chunkState = 'data';
          } else if (r.chunkState === 'data') {
            const take = Math.min(r.chunkLeft, this.buf.length);
            r.body = Buffer.concat([r.body, this.buf.subarray(0, take)]);
            this.buf = this.buf.subarray(take);
            r.chunkLeft -= take;
            if (r.chunkLeft > 0) return;
            r.chunkState = 'crlf';
          } else if (r.chunkState === 'crlf') {
            if (this.buf.length < 2) return;
            this.buf = this.buf.subarray(2);
            r.chunkState = 'size';
          } else if (r.chunkState === 'trailer') {
            const i = this.buf.indexOf('\r\n');
            if (i < 0) return;
            const line = this.buf.subarray(0, i);
            this.buf = this.buf.subarray(i + 2);
            if (line.length === 0) { done = true; break; }
          }
        }
        if (!done) return;
      } else {
        r.body = Buffer.concat([r.body, this.buf]);
        this.buf = Buffer.alloc(0);
        return;
      }
      r.complete = true;
      this.responses.push(r);
      this.cur = null;
    }
  }
}

/** A raw client connection with helpers to wait for responses or for the peer to close. */
export class RawConn {
  static async connect(port, host = '127.0.0.1') {
    const c = new RawConn();
    c.sock = net.connect(port, host);
    c.sock.setNoDelay(true);
    c.parser = new ResponseParser();
    c.closed = false;
    c.error = null;
    c.sock.on('data', (d) => {
      try { c.parser.push(d); } catch (e) { c.error = e; }
    });
    c.sock.on('end', () => { c.parser.end(); });
    c.sock.on('close', () => { c.closed = true; c.closedAt = Date.now(); c.parser.end(); });
    c.sock.on('error', (e) => { c.error = c.error || e; });
    const ok = await within(once(c.sock, 'connect').then(() => true), T(5000), false);
    if (!ok) { c.sock.destroy(); throw new Error('connect timeout'); }
    return c;
  }

  write(data) {
    return new Promise((resolve) => this.sock.write(data, () => resolve()));
  }

  get responses() { return this.parser.responses; }

  /** Final (non-1xx) responses. */
  get finals() { return this.parser.responses.filter((r) => r.status >= 200); }

  async waitFor(pred, timeoutMs = T(5000), what = 'condition') {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this)) {
      if (this.error && !(this.error.code === 'ECONNRESET' || this.error.code === 'EPIPE')) throw this.error;
      if (Date.now() > deadline) {
        throw new Error(`raw connection: timed out waiting for ${what}; got ${this.parser.responses.length} response(s), closed=${this.closed}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async waitResponses(n, timeoutMs) {
    await this.waitFor((c) => c.finals.length >= n || c.closed, timeoutMs, `${n} response(s)`);
    if (this.finals.length < n) {
      throw new Error(`connection closed after ${this.finals.length} of ${n} response(s)${this.error ? ` (${this.error.code || this.error.message})` : ''}`);
    }
    return this.finals;
  }

  async waitClosed(timeoutMs = T(5000)) {
    await this.waitFor((c) => c.closed, timeoutMs, 'close');
  }

  destroy() { this.sock.destroy(); }
}

/** Builds a request head (CRLF line ends) from a method, path and header pairs. */
export function head(method, path, headers) {
  let s = `${method} ${path} HTTP/1.1\r\n`;
  for (const [k, v] of headers) s += `${k}: ${v}\r\n`;
  return s + '\r\n';
}

/** A complete JSON POST request as bytes. */
export function jsonRequest(path, body, extraHeaders = []) {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return Buffer.concat([
    Buffer.from(head('POST', path, [['Host', '127.0.0.1'], ['Content-Type', 'application/json'], ['Content-Length', String(b.length)], ...extraHeaders])),
    b,
  ]);
}
