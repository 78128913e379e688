// The AWS event-stream binary framing (application/vnd.amazon.eventstream), written from the
// documented format so the fake Bedrock can frame recorded payloads itself:
//   prelude: total_length u32be, headers_length u32be, prelude_crc u32be (CRC32 of the 8 bytes)
//   headers: name_len u8, name, value_type u8 (7 = string), value_len u16be, value
//   payload, then message_crc u32be (CRC32 of everything before it).
import zlib from 'node:zlib';

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32 (IEEE). node:zlib.crc32 exists from Node 20.15 / 22.2; the table version otherwise. */
export function crc32(buf) {
  if (typeof zlib.crc32 === 'function') return zlib.crc32(buf) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function encodeHeaders(headers) {
  const parts = [];
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name, 'utf8');
    const v = Buffer.from(String(value), 'utf8');
    const h = Buffer.alloc(1 + n.length + 1 + 2);
    h.writeUInt8(n.length, 0);
    n.copy(h, 1);
    h.writeUInt8(7, 1 + n.length);
    h.writeUInt16BE(v.length, 2 + n.length);
    parts.push(h, v);
  }
  return Buffer.concat(parts);
}

/** One frame with string headers and a payload (Buffer | string | object -> JSON). */
export function encodeFrame(headers, payload) {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8');
  const h = encodeHeaders(headers);
  const total = 12 + h.length + p.length + 4;
  const out = Buffer.alloc(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(h.length, 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  h.copy(out, 12);
  p.copy(out, 12 + h.length);
  out.writeUInt32BE(crc32(out.subarray(0, total - 4)), total - 4);
  return out;
}

/** An event frame as Bedrock sends it (:event-type, :content-type, :message-type event). */
export function eventFrame(eventType, payload) {
  return encodeFrame({ ':event-type': eventType, ':content-type': 'application/json', ':message-type': 'event' }, payload);
}

/** An exception frame (e.g. throttlingException) as Bedrock sends it mid-stream. */
export function exceptionFrame(exceptionType, message) {
  return encodeFrame({ ':exception-type': exceptionType, ':content-type': 'application/json', ':message-type': 'exception' }, { message });
}

/** A Converse stream event object { messageStart: {...} } -> frame (payload gets Bedrock's "p" padding). */
export function converseEventFrame(ev) {
  const [type] = Object.keys(ev);
  return eventFrame(type, { ...ev[type], p: 'abcdefgh' });
}

/** An Anthropic event (object) wrapped as InvokeModelWithResponseStream does: a "chunk" frame with base64 bytes. */
export function invokeChunkFrame(anthropicEvent) {
  const bytes = Buffer.from(typeof anthropicEvent === 'string' ? anthropicEvent : JSON.stringify(anthropicEvent)).toString('base64');
  return eventFrame('chunk', { bytes, p: 'abcdefghijklmnop' });
}

/** Decodes every frame of buf; throws on a CRC mismatch. Returns [{ headers, payload: Buffer }]. */
export function decodeFrames(buf) {
  const b = Buffer.from(buf);
  const out = [];
  let off = 0;
  while (off + 16 <= b.length) {
    const total = b.readUInt32BE(off);
    const hlen = b.readUInt32BE(off + 4);
    if (crc32(b.subarray(off, off + 8)) !== b.readUInt32BE(off + 8)) throw new Error(`prelude CRC mismatch at ${off}`);
    if (off + total > b.length) throw new Error(`truncated frame at ${off}`);
    if (crc32(b.subarray(off, off + total - 4)) !== b.readUInt32BE(off + total - 4)) throw new Error(`message CRC mismatch at ${off}`);
    const headers = {};
    let i = off + 12;
    const hend = i + hlen;
    while (i < hend) {
      const nl = b.readUInt8(i);
      const name = b.subarray(i + 1, i + 1 + nl).toString('utf8');
      i += 1 + nl;
      const type = b.readUInt8(i);
      i += 1;
      if (type !== 7 && type !== 6) throw new Error(`unsupported header type ${type}`);
      const vl = b.readUInt16BE(i);
      headers[name] = b.subarray(i + 2, i + 2 + vl).toString('utf8');
      i += 2 + vl;
    }
    out.push({ headers, payload: b.subarray(hend, off + total - 4) });
    off += total;
  }
  if (off !== b.length) throw new Error(`trailing ${b.length - off} bytes`);
  return out;
}

/** Re-cuts a byte stream at arbitrary offsets (so frames straddle chunk boundaries). */
export function recut(buf, sizes = [7, 33, 5, 61]) {
  const b = Buffer.from(buf);
  const out = [];
  let i = 0;
  let k = 0;
  while (i < b.length) {
    const n = sizes[k++ % sizes.length];
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return out;
}
