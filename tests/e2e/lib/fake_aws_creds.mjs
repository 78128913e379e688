// Fake AWS credential endpoints on one 127.0.0.1 server, each recording what it received:
//   STS AssumeRoleWithWebIdentity (AWS_ENDPOINT_URL_STS; form POST or query GET; XML answer),
//   container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI = <origin>/container/creds; checks
//   the Authorization token), EC2 IMDSv2 (AWS_EC2_METADATA_SERVICE_ENDPOINT = <origin>; PUT
//   /latest/api/token, then GET /latest/meta-data/iam/security-credentials/[<role>] with the token).
import http from 'node:http';
import { once } from 'node:events';

function iso(ms) { return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'); }

export class FakeAWSCreds {
  /** sets: { sts, container, imds } each { keyId, secret, token }; containerToken: expected Authorization; role: IMDS role name. */
  constructor({ sts, container, imds, containerToken = 'e2e-container-auth-token', role = 'e2e-imds-role', imdsToken = 'e2e-imds-session-token-AQAE' } = {}) {
    this.sets = { sts, container, imds };
    this.expiresInMs = 3600_000; // lifetime of the credentials handed out (tests of refresh shorten it)
    this.containerToken = containerToken;
    this.role = role;
    this.imdsToken = imdsToken;
    this.requests = [];
    this.server = http.createServer((req, res) => this._handle(req, res));
  }

  async listen() {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = this.server.address().port;
    this.origin = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async close() {
    this.server.closeAllConnections?.();
    await new Promise((r) => this.server.close(() => r()));
  }

  of(kind) { return this.requests.filter((r) => r.kind === kind); }

  async _handle(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url, this.origin);
    const rec = { method: req.method, path: req.url, headers: { ...req.headers }, body, kind: 'unknown' };
    this.requests.push(rec);
    const send = (status, text, ct = 'application/json') => {
      res.writeHead(status, { 'content-type': ct, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const exp = iso(Date.now() + this.expiresInMs);

    // STS: Action may be in the form body or the query string.
    const form = new URLSearchParams(req.method === 'POST' && /x-www-form-urlencoded/.test(req.headers['content-type'] || '') ? body : '');
    const params = new URLSearchParams([...url.searchParams, ...form]);
    if (params.get('Action') === 'AssumeRoleWithWebIdentity') {
      rec.kind = 'sts';
      rec.params = Object.fromEntries(params);
      const c = this.sets.sts;
      if (!c) return send(500, '<Error/>', 'text/xml');
      return send(200, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:default:e2e</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/e2e-role/${params.get('RoleSessionName') || 'session'}</Arn>
      <AssumedRoleId>AROAE2E:${params.get('RoleSessionName') || 'session'}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>${c.token}</SessionToken>
      <SecretAccessKey>${c.secret}</SecretAccessKey>
      <Expiration>${exp}</Expiration>
      <AccessKeyId>${c.keyId}</AccessKeyId>
    </Credentials>
    <Provider>arn:aws:iam::123456789012:oidc-provider/e2e</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>e2e-sts-request</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
`, 'text/xml');
    }
    if (url.pathname === '/container/creds') {
      rec.kind = 'container';
      const c = this.sets.container;
      if (!c || req.headers.authorization !== this.containerToken) return send(401, JSON.stringify({ message: 'bad authorization token' }));
      return send(200, JSON.stringify({ AccessKeyId: c.keyId, SecretAccessKey: c.secret, Token: c.token, Expiration: exp, RoleArn: 'arn:aws:iam::123456789012:role/e2e-container' }));
    }
    if (url.pathname === '/latest/api/token') {
      rec.kind = 'imds-token';
      if (req.method !== 'PUT' || !req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return send(400, 'bad token request', 'text/plain');
      return send(200, this.imdsToken, 'text/plain');
    }
    if (url.pathname.startsWith('/latest/meta-data/iam/security-credentials')) {
      rec.kind = 'imds-creds';
      if (req.headers['x-aws-ec2-metadata-token'] !== this.imdsToken) return send(401, '', 'text/plain');
      const rest = url.pathname.slice('/latest/meta-data/iam/security-credentials'.length).replace(/^\/+/, '');
      if (!rest) return send(200, this.role, 'text/plain');
      if (rest !== this.role) return send(404, '', 'text/plain');
      const c = this.sets.imds;
      return send(200, JSON.stringify({ Code: 'Success', LastUpdated: iso(Date.now()), Type: 'AWS-HMAC', AccessKeyId: c.keyId, SecretAccessKey: c.secret, Token: c.token, Expiration: exp }));
    }
    return send(404, JSON.stringify({ message: `fake aws: no route ${req.method} ${req.url}` }));
  }
}

export async function startFakeAWSCreds(opts = {}) {
  const f = new FakeAWSCreds(opts);
  await f.listen();
  return f;
}
