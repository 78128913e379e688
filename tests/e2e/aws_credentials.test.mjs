// Each AWS credential source of the gateway against its fake endpoint, proven by the SigV4
// signature the fake Bedrock verifies (right access key id, right session token): environment
// variables, shared credentials file + AWS_PROFILE, the BackendSecurityPolicy credentialsFile
// Secret with a profile (over the environment), web identity (fake STS AssumeRoleWithWebIdentity
// saw the token file's contents and the role ARN), container credentials (saw the authorization
// token), EC2 IMDSv2 (token first, then credentials); no credentials at all fails cleanly; no
// secret appears in a log line, /metrics or /config_dump.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFakeBedrock } from './lib/fake_bedrock.mjs';
import { startFakeAWSCreds } from './lib/fake_aws_creds.mjs';
import { startGateway, tmpDir, fetchT, T, CLIENT_KEY } from './lib/gateway.mjs';
import { assertNoSanitizerReport } from './lib/common.mjs';
import { providerYaml, AWS_KEYS, credsMap, credentialsFileText, cleanAwsEnv } from './lib/providers.mjs';

const REGION = 'us-east-2';
const MODEL = 'us.amazon.nova-lite-v1:0';
const WEB_IDENTITY_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.e2e-web-identity-jwt-payload.c2lnbmF0dXJl';
const ROLE_ARN = 'arn:aws:iam::123456789012:role/aigw-e2e-role';
const CONTAINER_TOKEN = 'e2e-container-auth-token-5f4e3d2c';

let bedrock;
let creds;
let dir;
const gateways = [];

before(async () => {
  bedrock = await startFakeBedrock({ creds: credsMap(...Object.values(AWS_KEYS)), region: REGION });
  creds = await startFakeAWSCreds({ sts: AWS_KEYS.sts, container: AWS_KEYS.container, imds: AWS_KEYS.imds, containerToken: CONTAINER_TOKEN });
  dir = tmpDir('aigw-e2e-aws-');
});
after(async () => {
  for (const g of gateways) await g.close();
  await bedrock?.close();
  await creds?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function config(g, credentialsFile = null) {
  return providerYaml({
    port: g.port,
    routes: [{ model: MODEL, backends: [{ name: 'bedrock' }] }],
    backends: [{ name: 'bedrock', port: bedrock.port, schema: 'AWSBedrock', auth: { type: 'AWSCredentials', region: REGION, credentialsFile } }],
  });
}

async function start(env, credentialsFile = null) {
  const gw = await startGateway({ env: cleanAwsEnv(env), config: (g) => config(g, credentialsFile), readyTimeoutMs: T(10_000) });
  gateways.push(gw);
  return gw;
}

/** One chat request; retried briefly while the gateway's credentials may still be resolving. */
async function chatSigned(gw, { attempts = 20 } = {}) {
  let last = null;
  for (let i = 0; i < attempts; i++) {
    const before = bedrock.requests.length;
    const res = await fetchT(`${gw.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'who am I signed as?' }] }),
    }, T(8000));
    const text = await res.text();
    last = { status: res.status, text, rec: bedrock.requests[before] };
    if (res.status === 200) return last;
    await sleep(T(100));
  }
  return last;
}

function assertSignedWith(r, set) {
  assert.equal(r.status, 200, `request succeeded: ${r.text.slice(0, 300)}`);
  assert.ok(r.rec, 'the fake Bedrock got the request');
  assert.deepEqual(r.rec.sigv4.reasons, [], 'SigV4 verifies');
  assert.equal(r.rec.sigv4.keyId, set.keyId, 'signed with the expected access key id');
  assert.equal(r.rec.sigv4.token || null, set.token || null, 'X-Amz-Security-Token is the expected session token');
  assert.equal(r.rec.sigv4.region, REGION);
}

/** No secret of any source, nor the client key, in logs, /metrics or /config_dump. */
async function assertNoSecrets(gw) {
  await gw.settleLogs();
  const secrets = [CLIENT_KEY, WEB_IDENTITY_TOKEN, CONTAINER_TOKEN];
  for (const s of Object.values(AWS_KEYS)) {
    secrets.push(s.secret);
    if (s.token) secrets.push(s.token);
  }
  const metrics = await gw.metricsText();
  const dumpRes = await fetchT(`${gw.adminURL}/config_dump`);
  const dump = dumpRes.status === 200 ? await dumpRes.text() : '';
  const where = { logs: JSON.stringify(gw.logs) + gw.nonJsonStdout.join('\n'), stderr: gw.stderr, metrics, config_dump: dump };
  for (const [w, text] of Object.entries(where)) {
    for (const s of secrets) assert.ok(!text.includes(s), `a secret (${s.slice(0, 6)}...) appears in ${w}`);
  }
}

test('environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN', async () => {
  const k = AWS_KEYS.env;
  const gw = await start({ AWS_ACCESS_KEY_ID: k.keyId, AWS_SECRET_ACCESS_KEY: k.secret, AWS_SESSION_TOKEN: k.token });
  assertSignedWith(await chatSigned(gw), k);
  await assertNoSecrets(gw);
});

test('shared credentials file: AWS_SHARED_CREDENTIALS_FILE with AWS_PROFILE, and the default profile without it', async () => {
  const file = path.join(dir, 'credentials');
  fs.writeFileSync(file, credentialsFileText({ default: AWS_KEYS.file, 'e2e-profile': AWS_KEYS.fileOther }));
  const gw = await start({ AWS_SHARED_CREDENTIALS_FILE: file, AWS_PROFILE: 'e2e-profile' });
  assertSignedWith(await chatSigned(gw), AWS_KEYS.fileOther);
  await assertNoSecrets(gw);
  const gw2 = await start({ AWS_SHARED_CREDENTIALS_FILE: file });
  assertSignedWith(await chatSigned(gw2), AWS_KEYS.file);
});

test('BackendSecurityPolicy credentialsFile Secret with a profile wins over the environment', async () => {
  const k = AWS_KEYS.env;
  const gw = await start({ AWS_ACCESS_KEY_ID: k.keyId, AWS_SECRET_ACCESS_KEY: k.secret, AWS_SESSION_TOKEN: k.token },
    { text: credentialsFileText({ default: AWS_KEYS.secret, 'e2e-bsp': AWS_KEYS.secretProfile }), profile: 'e2e-bsp' });
  assertSignedWith(await chatSigned(gw), AWS_KEYS.secretProfile);
  await assertNoSecrets(gw);
});

test('web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN against the fake STS (AWS_ENDPOINT_URL_STS)', async () => {
  const tokenFile = path.join(dir, 'web-identity-token');
  fs.writeFileSync(tokenFile, WEB_IDENTITY_TOKEN);
  const before = creds.of('sts').length;
  const gw = await start({
    AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ROLE_ARN: ROLE_ARN, AWS_ROLE_SESSION_NAME: 'aigw-e2e-session',
    AWS_ENDPOINT_URL_STS: creds.origin, AWS_REGION: REGION,
  });
  const r = await chatSigned(gw);
  const sts = creds.of('sts').slice(before);
  assert.ok(sts.length >= 1, `the fake STS was called (requests seen: ${creds.requests.map((x) => `${x.method} ${x.path}`).join(', ')})`);
  assert.equal(sts[0].params.WebIdentityToken, WEB_IDENTITY_TOKEN, 'the token file contents were sent');
  assert.equal(sts[0].params.RoleArn, ROLE_ARN);
  assert.equal(sts[0].params.RoleSessionName, 'aigw-e2e-session');
  assert.ok(!sts[0].headers.authorization, 'AssumeRoleWithWebIdentity is an unsigned call');
  assertSignedWith(r, AWS_KEYS.sts);
  await assertNoSecrets(gw);
});

test('container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', async () => {
  const tokenFile = path.join(dir, 'container-token');
  fs.writeFileSync(tokenFile, CONTAINER_TOKEN);
  const before = creds.of('container').length;
  const gw = await start({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${creds.origin}/container/creds`, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile });
  const r = await chatSigned(gw);
  const seen = creds.of('container').slice(before);
  assert.ok(seen.length >= 1, 'the container endpoint was called');
  assert.equal(seen[0].method, 'GET');
  assert.equal(seen[0].headers.authorization, CONTAINER_TOKEN, 'the authorization token from the file');
  assertSignedWith(r, AWS_KEYS.container);
  await assertNoSecrets(gw);
});

test('EC2 IMDSv2: PUT /latest/api/token first, then the role and its credentials with the token', async () => {
  const before = creds.requests.length;
  const gw = await start({ AWS_EC2_METADATA_DISABLED: null, AWS_EC2_METADATA_SERVICE_ENDPOINT: creds.origin });
  const r = await chatSigned(gw);
  const seen = creds.requests.slice(before).filter((x) => x.kind.startsWith('imds'));
  assert.ok(seen.length >= 2, `IMDS calls: ${seen.map((x) => `${x.method} ${x.path}`).join(', ')}`);
  assert.equal(seen[0].kind, 'imds-token', 'a session token is requested first (IMDSv2)');
  assert.equal(seen[0].method, 'PUT');
  assert.ok(Number(seen[0].headers['x-aws-ec2-metadata-token-ttl-seconds']) > 0, 'token TTL header');
  const credCalls = seen.filter((x) => x.kind === 'imds-creds');
  assert.ok(credCalls.length >= 1);
  for (const c of credCalls) assert.equal(c.headers['x-aws-ec2-metadata-token'], creds.imdsToken, 'every metadata GET carries the token');
  assert.ok(credCalls.some((c) => c.path.endsWith(`/security-credentials/${creds.role}`)), 'credentials of the role fetched');
  assertSignedWith(r, AWS_KEYS.imds);
  await assertNoSecrets(gw);
});

test('no credentials anywhere: the client gets an OpenAI-format error and nothing unsigned reaches Bedrock', async () => {
  const gw = await start({});
  const before = bedrock.requests.length;
  const res = await fetchT(`${gw.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }),
  }, T(8000));
  const text = await res.text();
  assert.ok(res.status >= 400, `an error status: ${res.status} ${text.slice(0, 200)}`);
  const j = JSON.parse(text);
  assert.ok(j.error && typeof j.error.message === 'string', `OpenAI error envelope: ${text}`);
  const unsigned = bedrock.requests.slice(before).filter((x) => !(x.sigv4 && x.sigv4.ok));
  assert.equal(unsigned.length, 0, 'no unsigned request upstream');
});

test('short-lived container credentials are refreshed before they expire (off the request path, no hammering)', async () => {
  const tokenFile = path.join(dir, 'container-token-2');
  fs.writeFileSync(tokenFile, CONTAINER_TOKEN);
  const rotated = { keyId: 'ASIAE2EROTATED000009', secret: 'e2eRotatedSecret/Key+0123456789abcdefghij', token: 'e2e-rotated-session-token-IQoJ' };
  bedrock.creds[rotated.keyId] = { secret: rotated.secret, token: rotated.token };
  const savedSet = creds.sets.container;
  creds.expiresInMs = 4000;
  try {
    const before = creds.of('container').length;
    const gw = await start({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${creds.origin}/container/creds`, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile });
    assertSignedWith(await chatSigned(gw), AWS_KEYS.container);
    creds.sets.container = rotated; // the next fetch hands out new credentials
    const deadline = Date.now() + T(8000);
    let r = null;
    while (Date.now() < deadline) {
      r = await chatSigned(gw, { attempts: 1 });
      if (r.rec && r.rec.sigv4.keyId === rotated.keyId) break;
      await sleep(T(200));
    }
    assertSignedWith(r, rotated);
    const fetches = creds.of('container').length - before;
    assert.ok(fetches >= 2 && fetches <= 12, `credentials fetched ${fetches} times in a few seconds`);
    await assertNoSecrets(gw);
    assert.ok(!gw.stderr.includes(rotated.secret) && !JSON.stringify(gw.logs).includes(rotated.token));
  } finally {
    creds.sets.container = savedSet;
    creds.expiresInMs = 3600_000;
  }
});

test('gateways exit 0 on SIGTERM with no sanitizer report', async () => {
  for (const gw of gateways) {
    const ex = await gw.stop({ timeoutMs: T(10_000) });
    assert.equal(ex.code, 0);
    assertNoSanitizerReport(gw);
  }
});
