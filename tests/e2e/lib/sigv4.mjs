// Independent SigV4 verification (AWS Signature Version 4, header form), written from the
// documented algorithm with node:crypto, so the fake Bedrock can check what the gateway signed:
//   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n HexSHA256(payload)
//   CanonicalURI: for every service but S3, each path segment URI-encoded once more than it was
//     sent (the request path is already encoded once, so '%3A' becomes '%253A').
//   StringToSign = "AWS4-HMAC-SHA256" \n X-Amz-Date \n <date>/<region>/<service>/aws4_request \n HexSHA256(CanonicalRequest)
//   SigningKey = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")
import crypto from 'node:crypto';

const sha256hex = (b) => crypto.createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => crypto.createHmac('sha256', k).update(s, 'utf8').digest();

/** RFC 3986 encoding as SigV4 wants it: unreserved kept, everything else %XX upper-case. */
export function uriEncode(s) {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c)) out += c;
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export function canonicalURI(rawPath) {
  const p = rawPath.split('?')[0] || '/';
  return p.split('/').map((seg) => uriEncode(seg)).join('/');
}

export function canonicalQuery(rawPath) {
  const q = rawPath.includes('?') ? rawPath.slice(rawPath.indexOf('?') + 1) : '';
  if (!q) return '';
  const pairs = q.split('&').filter(Boolean).map((kv) => {
    const i = kv.indexOf('=');
    const k = decodeURIComponent(i < 0 ? kv : kv.slice(0, i));
    const v = decodeURIComponent(i < 0 ? '' : kv.slice(i + 1));
    return [uriEncode(k), uriEncode(v)];
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

export function parseAuthorization(h) {
  const m = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(String(h || '').trim());
  if (!m) return null;
  const [keyId, date, region, service, term] = m[1].split('/');
  return { keyId, date, region, service, term, signedHeaders: m[2].split(';'), signature: m[3], signedHeadersRaw: m[2] };
}

export function signingKey(secret, date, region, service) {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

/**
 * Verifies rec (a recorded request: method, path, rawHeaders, body) against known credentials.
 * creds: { [accessKeyId]: { secret, token? } }. expect: { region, service, maxSkewMs }.
 * Returns { ok, reasons: [...], keyId, region, service, signedHeaders, token, canonicalRequest }.
 */
export function verifySigV4(rec, creds, { region = null, service = 'bedrock', maxSkewMs = 15 * 60_000 } = {}) {
  const reasons = [];
  const hdrs = {};
  for (let i = 0; i + 1 < rec.rawHeaders.length; i += 2) {
    const k = rec.rawHeaders[i].toLowerCase();
    (hdrs[k] ||= []).push(rec.rawHeaders[i + 1]);
  }
  const auths = hdrs.authorization || [];
  if (auths.length !== 1) return { ok: false, reasons: [`${auths.length} Authorization headers`] };
  const a = parseAuthorization(auths[0]);
  if (!a) return { ok: false, reasons: [`Authorization is not SigV4: ${String(auths[0]).slice(0, 60)}`] };
  const result = { keyId: a.keyId, region: a.region, service: a.service, signedHeaders: a.signedHeaders, token: (hdrs['x-amz-security-token'] || [null])[0] };
  if (a.term !== 'aws4_request') reasons.push(`scope terminator ${a.term}`);
  if (region !== null && a.region !== region) reasons.push(`region ${a.region}, expected ${region}`);
  if (service !== null && a.service !== service) reasons.push(`service ${a.service}, expected ${service}`);
  const sorted = [...a.signedHeaders].sort();
  if (sorted.join(';') !== a.signedHeadersRaw) reasons.push('SignedHeaders not sorted');
  for (const need of ['host', 'x-amz-date']) if (!a.signedHeaders.includes(need)) reasons.push(`${need} not signed`);
  if (result.token && !a.signedHeaders.includes('x-amz-security-token')) reasons.push('x-amz-security-token sent but not signed');
  for (const h of a.signedHeaders) if (!hdrs[h]) reasons.push(`signed header ${h} not sent`);
  const amzDate = (hdrs['x-amz-date'] || [''])[0];
  if (!/^\d{8}T\d{6}Z$/.test(amzDate)) reasons.push(`x-amz-date ${amzDate}`);
  else {
    if (amzDate.slice(0, 8) !== a.date) reasons.push(`scope date ${a.date} != x-amz-date ${amzDate}`);
    const t = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
    if (Math.abs(Date.now() - t) > maxSkewMs) reasons.push(`x-amz-date ${amzDate} too far from now`);
  }
  const payloadHash = sha256hex(rec.body || Buffer.alloc(0));
  const declared = (hdrs['x-amz-content-sha256'] || [null])[0];
  if (declared !== null && declared !== payloadHash && declared !== 'UNSIGNED-PAYLOAD') reasons.push('x-amz-content-sha256 does not match the body');
  const canonHeaders = a.signedHeaders.map((h) => `${h}:${(hdrs[h] || []).map((v) => String(v).trim().replace(/\s+/g, ' ')).join(',')}\n`).join('');
  const canonicalRequest = [rec.method, canonicalURI(rec.path), canonicalQuery(rec.path), canonHeaders, a.signedHeadersRaw, payloadHash].join('\n');
  result.canonicalRequest = canonicalRequest;
  const c = creds[a.keyId];
  if (!c) reasons.push(`unknown access key id ${a.keyId}`);
  else {
    if ((c.token || null) !== (result.token || null)) reasons.push(`session token ${result.token ? 'differs' : 'missing'}`);
    const sts = ['AWS4-HMAC-SHA256', amzDate, `${a.date}/${a.region}/${a.service}/aws4_request`, sha256hex(canonicalRequest)].join('\n');
    const want = crypto.createHmac('sha256', signingKey(c.secret, a.date, a.region, a.service)).update(sts, 'utf8').digest('hex');
    if (want !== a.signature) reasons.push('signature mismatch');
  }
  return { ok: reasons.length === 0, reasons, ...result };
}

/** Signs a request the way the verifier expects (self-test of the verifier). */
export function signForTest({ method, path, headers, body, keyId, secret, token = null, region, service = 'bedrock', date = new Date() }) {
  const amzDate = date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const h = { ...headers, 'x-amz-date': amzDate };
  if (token) h['x-amz-security-token'] = token;
  const names = Object.keys(h).map((k) => k.toLowerCase()).sort();
  const lower = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
  const canonHeaders = names.map((n) => `${n}:${String(lower[n]).trim()}\n`).join('');
  const cr = [method, canonicalURI(path), canonicalQuery(path), canonHeaders, names.join(';'), sha256hex(body)].join('\n');
  const sts = ['AWS4-HMAC-SHA256', amzDate, `${amzDate.slice(0, 8)}/${region}/${service}/aws4_request`, sha256hex(cr)].join('\n');
  const sig = crypto.createHmac('sha256', signingKey(secret, amzDate.slice(0, 8), region, service)).update(sts).digest('hex');
  h.authorization = `AWS4-HMAC-SHA256 Credential=${keyId}/${amzDate.slice(0, 8)}/${region}/${service}/aws4_request, SignedHeaders=${names.join(';')}, Signature=${sig}`;
  return h;
}
