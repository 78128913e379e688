// Test-time OAuth material for the MCP authorization tests: RSA and EC P-256 keys made with
// node:crypto, JWS compact tokens signed with them (RS256, ES256), and a small authorization server
// on 127.0.0.1 that serves its RFC 8414 metadata and a JWKS that a test can rotate or slow down.
import crypto from 'node:crypto';
import http from 'node:http';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** A signing key: kind 'RS256' (RSA 2048) or 'ES256' (P-256). publicJwk is its JWKS entry. */
export function newKey(alg, kid) {
  const { privateKey, publicKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicJwk };
}

/** Signs claims as a JWS compact token. header adds to (or overrides) {alg, typ, kid}. */
export function signJwt(key, claims, header = {}) {
  const h = { alg: key.alg, typ: 'JWT', kid: key.kid, ...header };
  const input = `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify(claims))}`;
  const sig = key.alg === 'ES256'
    ? crypto.sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
    : crypto.sign('sha256', Buffer.from(input), key.privateKey);
  return `${input}.${b64url(sig)}`;
}

/** A JSON Web Key Set document of the keys' public halves. */
export function jwksOf(...keys) {
  return { keys: keys.map((k) => k.publicJwk) };
}

/** Unix seconds. */
export const nowS = () => Math.floor(Date.now() / 1000);

/**
 * An authorization server on 127.0.0.1 with issuer http://127.0.0.1:<port><issuerPath>: its
 * metadata at the RFC 8414 path-inserted URL (jwks_uri pointing at /jwks.json) and the JWKS at
 * /jwks.json. Every request is recorded (path, time); `keys` is the current key set (assign to
 * rotate); `delayMs` holds every answer back that long.
 */
export class FakeIdp {
  constructor({ issuerPath = '/realms/e2e', keys = [] } = {}) {
    this.issuerPath = issuerPath;
    this.keys = keys;
    this.delayMs = 0;
    this.requests = [];
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    this.origin = `http://127.0.0.1:${this.port}`;
    this.issuer = `${this.origin}${this.issuerPath}`;
    this.jwksUri = `${this.origin}/jwks.json`;
    return this;
  }

  /** The RFC 8414 document this server publishes. */
  get metadata() {
    return {
      issuer: this.issuer,
      authorization_endpoint: `${this.issuer}/authorize`,
      token_endpoint: `${this.issuer}/token`,
      jwks_uri: this.jwksUri,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
    };
  }

  hits(path) { return this.requests.filter((r) => r.path === path); }

  handle(req, res) {
    this.requests.push({ path: req.url, at: Date.now(), headers: req.headers });
    const send = () => {
      if (req.url === '/jwks.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwksOf(...this.keys)));
      } else if (req.url === `/.well-known/oauth-authorization-server${this.issuerPath}`) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.metadata));
      } else {
        res.writeHead(404).end();
      }
    };
    if (this.delayMs > 0) setTimeout(send, this.delayMs);
    else send();
  }

  async close() {
    this.server.closeAllConnections?.();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
