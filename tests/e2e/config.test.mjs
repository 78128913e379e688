// Configuration loading end to end: `aigw validate` (exit 0 when valid; every problem printed as
// file:line:col: Kind ns/name: message, positions in the file as written even after ${VAR}
// substitution), `aigw run` refusing an invalid file, ${VAR} substitution, the Secret
// substitution annotations (env and file), data vs stringData, /config_dump (generation, never a
// secret), the config metrics at start, /v1/models from Exact matches with modelsOwnedBy /
// modelsCreatedAt, cross-namespace references with and without a ReferenceGrant, and
// BackendTrafficPolicy precedence (route over Gateway) and dangling targets.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startFakeOpenAI } from './lib/fake_openai.mjs';
import { Gateway, startGateway, runAigw, tmpDir, fetchT, within, T, CLIENT_KEY } from './lib/gateway.mjs';
import { shutdownTest } from './lib/common.mjs';
import { parseProm, total } from './lib/prom.mjs';
import { joinDocs, gatewayDoc, routeDoc, backendDocs, referenceGrantDoc, btpDoc, lineOf, problemLines, chat } from './lib/resources.mjs';

const EXAMPLES = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..', 'shared', 'testdata', 'envoy-ai-gateway', 'examples');

const KEYS = {
  string: 'sk-cfg-stringdata-7f3a91c2e4',
  data: 'sk-cfg-base64data-5b8d02e6a1',
  env: 'sk-cfg-annotation-env-c4e9d1f07b',
  file: 'sk-cfg-annotation-file-9a2b3c4d5e',
  var: 'sk-cfg-dollar-var-1e2d3c4b5a',
};

let dir;
let fake;
let gw;       // every way of getting a key, ${VAR}s, models metadata
let gwGrant;  // cross-namespace reference with a ReferenceGrant

function write(name, text) {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

function mainConfig(port) {
  return joinDocs(
    gatewayDoc({ port }),
    routeDoc({
      rules: [
        { model: 'm-string', backends: [{ name: 'svc-string' }], modelsOwnedBy: 'Team String', modelsCreatedAt: '2025-05-23T00:00:00Z' },
        { model: 'm-data', backends: [{ name: 'svc-data' }] },
        { models: ['m-env', 'm-string'], backends: [{ name: 'svc-env' }], modelsOwnedBy: 'Other Team' },
        { model: 'm-file', backends: [{ name: 'svc-file' }] },
        { model: '${E2E_MODEL}', backends: [{ name: 'svc-var' }] },
        { matches: [[{ type: 'RegularExpression', name: 'x-ai-eg-model', value: 'm-re-.*' }]], backends: [{ name: 'svc-string' }] },
      ],
    }),
    backendDocs({ name: 'svc-string', port: fake.port, key: KEYS.string }),
    backendDocs({ name: 'svc-data', port: fake.port, key: KEYS.data, keyVia: 'data' }),
    backendDocs({ name: 'svc-env', port: fake.port, key: 'unused', keyVia: { env: 'E2E_ANN_KEY' } }),
    backendDocs({ name: 'svc-file', port: fake.port, key: 'unused', keyVia: { file: path.join(dir, 'key.txt') } }),
    backendDocs({ name: 'svc-var', port: '${E2E_FAKE_PORT}', key: '${E2E_VAR_KEY}' }),
  );
}

const mainEnv = () => ({ E2E_ANN_KEY: KEYS.env, E2E_FAKE_PORT: String(fake.port), E2E_VAR_KEY: KEYS.var, E2E_MODEL: 'm-var-resolved' });

function crossNsConfig(port, { grant, grantFrom = 'team-a' }) {
  return joinDocs(
    gatewayDoc({ port, ns: 'team-a' }),
    routeDoc({ ns: 'team-a', name: 'xns-route', rules: [{ model: 'm-xns', backends: [{ name: 'shared-svc', ns: 'shared' }] }] }),
    backendDocs({ name: 'shared-svc', ns: 'shared', port: fake.port, key: KEYS.string }),
    grant ? referenceGrantDoc({ ns: 'shared', fromNs: grantFrom }) : null,
  );
}

before(async () => {
  dir = tmpDir('aigw-e2e-config-');
  fs.writeFileSync(path.join(dir, 'key.txt'), `${KEYS.file}\n`);
  fake = await startFakeOpenAI();
  gw = await startGateway({ config: (g) => mainConfig(g.port), env: mainEnv() });
});
after(async () => {
  for (const g of [gw, gwGrant]) await g?.close();
  await fake?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => fake.reset());

test('aigw validate: a valid file exits 0', () => {
  const file = write('valid.yaml', mainConfig(8080));
  const r = runAigw(['validate', file], { env: mainEnv() });
  assert.equal(r.code, 0, `exit code (stdout: ${r.stdout}\nstderr: ${r.stderr})`);
  assert.equal(problemLines(r.stdout + r.stderr, file).filter((p) => !/warn/.test(p.text)).length, 0);
  for (const k of Object.values(KEYS)) assert.ok(!(r.stdout + r.stderr).includes(k), 'a key value printed by validate');
});

test('aigw validate: the reference example files are valid; BackendTrafficPolicy is read, not ignored', () => {
  const basic = path.join(EXAMPLES, 'basic');
  if (!fs.existsSync(basic)) return;
  for (const f of fs.readdirSync(basic).filter((n) => n.endsWith('.yaml'))) {
    const r = runAigw(['validate', path.join(basic, f)]);
    assert.equal(r.code, 0, `${f}: ${r.stdout}${r.stderr}`);
  }
  const pf = path.join(EXAMPLES, 'provider_fallback');
  const file = write('provider_fallback.yaml', ['base.yaml', 'fallback.yaml'].map((f) => fs.readFileSync(path.join(pf, f), 'utf8')).join('\n---\n'));
  const r = runAigw(['validate', file]);
  assert.equal(r.code, 0, `provider_fallback: ${r.stdout}${r.stderr}`);
  assert.doesNotMatch(r.stdout + r.stderr, /BackendTrafficPolicy is not supported/, 'BackendTrafficPolicy must be loaded (retry policy of the fallback example)');
});

test('aigw validate: every problem printed as file:line:col: Kind ns/name: message, positions as written', () => {
  const text = joinDocs(
    gatewayDoc({ port: 99999 }),
    routeDoc({ rules: [{ model: 'm1', backends: [{ name: 'missing-svc' }] }, { model: 'm2', backends: [{ name: 'svc-ok' }] }] }),
    backendDocs({ name: 'svc-ok', port: '${E2E_BAD_PORT}' }),
    `apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: BackendSecurityPolicy
metadata:
  name: no-secret
  namespace: default
spec:
  targetRefs:
    - group: aigateway.envoyproxy.io
      kind: AIServiceBackend
      name: svc-ok
  type: APIKey
  apiKey:
    secretRef:
      name: secret-that-does-not-exist`,
  );
  const file = write('invalid.yaml', text);
  const r = runAigw(['validate', file], { env: { E2E_BAD_PORT: 'not-a-port' } });
  const out = r.stdout + r.stderr;
  assert.notEqual(r.code, 0, `invalid file must exit non-zero:\n${out}`);
  const probs = problemLines(out, file);
  const find = (kind, name, re) => probs.find((p) => p.kind === kind && p.name === name && re.test(p.message));

  const port = find('Gateway', 'aigw-e2e', /port/);
  assert.ok(port, `Gateway port problem missing:\n${out}`);
  assert.equal(port.line, lineOf(text, 'port: 99999'));
  assert.equal(port.col, text.split('\n')[port.line - 1].indexOf('99999') + 1, 'column of the bad value');
  assert.equal(port.ns, 'default');

  const missing = find('AIGatewayRoute', 'aigw-e2e-route', /missing-svc/);
  assert.ok(missing, `missing AIServiceBackend problem missing:\n${out}`);
  assert.equal(missing.line, lineOf(text, 'name: missing-svc'));

  // The position of a problem inside a ${VAR} is the ${VAR} in the file, not in the substituted text.
  const bad = find('Backend', 'svc-ok', /port/);
  assert.ok(bad, `Backend port problem missing:\n${out}`);
  assert.equal(bad.line, lineOf(text, '${E2E_BAD_PORT}'));
  assert.equal(bad.col, text.split('\n')[bad.line - 1].indexOf('${E2E_BAD_PORT}') + 1);

  const sec = find('BackendSecurityPolicy', 'no-secret', /secret-that-does-not-exist|Secret/);
  assert.ok(sec, `missing Secret problem missing:\n${out}`);
  const secLine = lineOf(text, 'name: no-secret');
  assert.ok(sec.line > secLine && sec.line <= lineOf(text, 'name: secret-that-does-not-exist'), `Secret problem line ${sec.line}`);
  assert.ok(probs.length >= 4, `every problem, not only the first (${probs.length}):\n${out}`);
});

test('aigw validate: BackendTrafficPolicy and substitution annotation problems are reported with positions', () => {
  const text = joinDocs(
    gatewayDoc({ port: 8080 }),
    routeDoc({ rules: [{ model: 'm1', backends: [{ name: 'svc-a' }] }] }),
    backendDocs({ name: 'svc-a', port: 8081, key: 'x', keyVia: { env: 'E2E_SURELY_UNSET_VAR_42' } }),
    `apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata:
  name: bad-retry
  namespace: default
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
      name: aigw-e2e-route
  retry:
    numRetries: lots`,
  );
  const file = write('invalid2.yaml', text);
  const r = runAigw(['validate', file]);
  const out = r.stdout + r.stderr;
  assert.notEqual(r.code, 0, out);
  const probs = problemLines(out, file);
  const ann = probs.find((p) => p.kind === 'Secret' && /E2E_SURELY_UNSET_VAR_42/.test(p.message));
  assert.ok(ann, `unset annotation variable not reported:\n${out}`);
  assert.equal(ann.line, lineOf(text, 'substitution.aigw.run/env/apiKey'));
  const btp = probs.find((p) => p.kind === 'BackendTrafficPolicy' && p.name === 'bad-retry' && /numRetries/.test(p.message));
  assert.ok(btp, `bad numRetries not reported:\n${out}`);
  assert.equal(btp.line, lineOf(text, 'numRetries: lots'));
});

test('aigw validate: a missing file and no argument exit non-zero', () => {
  const r = runAigw(['validate', path.join(dir, 'does-not-exist.yaml')]);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /does-not-exist\.yaml/);
  const r2 = runAigw(['validate']);
  assert.notEqual(r2.code, 0);
});

test('aigw run with an invalid file exits non-zero with every problem and never serves', async () => {
  const text = joinDocs(
    gatewayDoc({ port: 8080 }),
    routeDoc({ rules: [{ model: 'm1', backends: [{ name: 'missing-one' }] }, { model: 'm2', backends: [{ name: 'missing-two' }] }] }),
  );
  const g = new Gateway({ config: text, waitReady: false });
  try {
    await g.start();
    const ex = await within(g.exitPromise, T(10_000), null);
    assert.ok(ex, 'aigw run with an invalid file must exit');
    assert.notEqual(ex.code, 0, `exit ${JSON.stringify(ex)}`);
    const probs = problemLines(g.stderr, g.configPath);
    assert.ok(probs.some((p) => /missing-one/.test(p.message)), g.stderr);
    assert.ok(probs.some((p) => /missing-two/.test(p.message)), g.stderr);
    assert.equal(probs.find((p) => /missing-one/.test(p.message)).line, lineOf(text, 'name: missing-one'));
  } finally {
    await g.close();
  }
});

test('${VAR} substitution: model, port and key from the environment reach the upstream', async () => {
  const r = await chat(gw, 'm-var-resolved');
  assert.equal(r.status, 200, r.text);
  assert.equal(fake.requests.length, 1);
  assert.equal(fake.requests[0].headers.authorization, `Bearer ${KEYS.var}`);
  const lit = await chat(gw, '${E2E_MODEL}');
  assert.equal(lit.status, 404, 'the literal ${E2E_MODEL} is not a model after substitution');
});

test('Secret data (base64), stringData and the env/file substitution annotations each give the upstream key', async () => {
  for (const [model, key] of [['m-string', KEYS.string], ['m-data', KEYS.data], ['m-env', KEYS.env], ['m-file', KEYS.file], ['m-re-anything', KEYS.string]]) {
    fake.reset();
    const r = await chat(gw, model);
    assert.equal(r.status, 200, `${model}: ${r.text}`);
    assert.equal(fake.requests.length, 1, model);
    assert.equal(fake.requests[0].headers.authorization, `Bearer ${key}`, `${model}: key (file one without its trailing newline)`);
  }
});

test('/config_dump: generation 1, routes and backends, every API key redacted; no secret in dump, metrics, logs', async () => {
  const res = await fetchT(`${gw.adminURL}/config_dump`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') || '', /json/);
  const text = await res.text();
  const dump = JSON.parse(text);
  assert.equal(dump.generation, 1);
  const backends = dump.rules.flatMap((r) => r.backends);
  assert.ok(backends.length >= 6, 'every backend ref dumped');
  for (const b of backends) assert.ok(b.auth.apiKey === '[redacted]' || b.auth.apiKey === null, `apiKey of ${b.name}: ${b.auth.apiKey}`);
  assert.ok(dump.models.some((m) => m.id === 'm-var-resolved'));
  const metrics = await gw.metricsText();
  for (const k of [...Object.values(KEYS), CLIENT_KEY]) {
    assert.ok(!text.includes(k), `secret ${k} in /config_dump`);
    assert.ok(!text.includes(Buffer.from(k).toString('base64')), `base64 of secret ${k} in /config_dump`);
    assert.ok(!metrics.includes(k), `secret ${k} in /metrics`);
    assert.ok(!gw.stderr.includes(k), `secret ${k} on stderr`);
    assert.ok(!JSON.stringify(gw.logs).includes(k), `secret ${k} in the access log`);
  }
  const s = parseProm(metrics);
  assert.equal(total(s, 'aigw_config_generation'), 1, 'aigw_config_generation at start');
  assert.equal(total(s, 'aigw_config_reloads_total'), 0);
  assert.equal(total(s, 'aigw_config_reload_failures_total'), 0);
});

test('/v1/models lists Exact matches once, with modelsOwnedBy / modelsCreatedAt; regex matches are not listed', async () => {
  const client = gw.client();
  const list = [];
  for await (const m of client.models.list()) list.push(m);
  const ids = list.map((m) => m.id);
  assert.deepEqual([...ids].sort(), ['m-data', 'm-env', 'm-file', 'm-string', 'm-var-resolved'].sort(), `ids: ${ids}`);
  const byId = Object.fromEntries(list.map((m) => [m.id, m]));
  for (const m of list) assert.equal(m.object, 'model');
  assert.equal(byId['m-string'].owned_by, 'Team String', 'first rule listing the model wins');
  assert.equal(byId['m-string'].created, Date.parse('2025-05-23T00:00:00Z') / 1000);
  assert.equal(byId['m-env'].owned_by, 'Other Team');
  assert.equal(byId['m-data'].owned_by, 'Envoy AI Gateway', 'default owned_by');
  assert.ok(Number.isInteger(byId['m-data'].created) && byId['m-data'].created > 1.6e9, 'default created is a unix time');
  assert.equal(fake.requests.length, 0, '/v1/models answered locally');
});

test('cross-namespace backendRef without a ReferenceGrant is rejected (validate and run)', async () => {
  const text = crossNsConfig(8080, { grant: false });
  const file = write('xns-nogrant.yaml', text);
  const r = runAigw(['validate', file]);
  const out = r.stdout + r.stderr;
  assert.notEqual(r.code, 0, `a cross-namespace reference needs a ReferenceGrant:\n${out}`);
  const p = problemLines(out, file).find((x) => x.kind === 'AIGatewayRoute' && x.ns === 'team-a' && /ReferenceGrant/.test(x.message));
  assert.ok(p, `problem naming the missing ReferenceGrant:\n${out}`);
  const refLine = lineOf(text, 'name: shared-svc', 'backendRefs:');
  assert.ok(p.line >= refLine && p.line <= refLine + 1, `problem at line ${p.line}: the backendRef (name at ${refLine}, namespace next)`);

  // A grant for routes of another namespace does not count.
  const text2 = crossNsConfig(8080, { grant: true, grantFrom: 'team-b' });
  const file2 = write('xns-othergrant.yaml', text2);
  const r2 = runAigw(['validate', file2]);
  assert.notEqual(r2.code, 0, `a grant from team-b does not allow team-a:\n${r2.stdout}${r2.stderr}`);
  assert.match(r2.stdout + r2.stderr, /ReferenceGrant/);
});

test('cross-namespace backendRef with a ReferenceGrant: valid, served with the backend namespace key', async () => {
  const file = write('xns-grant.yaml', crossNsConfig(8080, { grant: true }));
  const r = runAigw(['validate', file]);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  gwGrant = await startGateway({ config: (g) => crossNsConfig(g.port, { grant: true }) });
  const c = await chat(gwGrant, 'm-xns');
  assert.equal(c.status, 200, c.text);
  assert.equal(fake.requests.length, 1);
  assert.equal(fake.requests[0].headers.authorization, `Bearer ${KEYS.string}`);
  const dump = await (await fetchT(`${gwGrant.adminURL}/config_dump`)).json();
  assert.ok(dump.rules.some((x) => x.backends.some((b) => /^shared\/shared-svc\//.test(b.name))), JSON.stringify(dump.rules));
});

test('BackendTrafficPolicy on the Gateway applies to every route; one on a route replaces it; a missing target is reported', async () => {
  const gwBtp = btpDoc({ name: 'gw-wide', route: 'unused', numRetries: 2 })
    .replace('kind: HTTPRoute\n      name: unused', 'kind: Gateway\n      name: aigw-e2e');
  const mk = (port, extra = []) => joinDocs(
    gatewayDoc({ port }),
    routeDoc({ name: 'r1', rules: [{ model: 'm1', backends: [{ name: 'svc-a' }] }] }),
    routeDoc({ name: 'r2', rules: [{ model: 'm2', backends: [{ name: 'svc-a' }] }] }),
    backendDocs({ name: 'svc-a', port: fake.port }),
    gwBtp,
    btpDoc({ name: 'r1-only', route: 'r1', numRetries: 1 }),
    ...extra,
  );
  const g = await startGateway({ config: (x) => mk(x.port) });
  try {
    const dump = await (await fetchT(`${g.adminURL}/config_dump`)).json();
    const r1 = dump.rules.find((r) => /\/r1$/.test(r.route));
    const r2 = dump.rules.find((r) => /\/r2$/.test(r.route));
    assert.equal(r1.retry.numRetries, 1, "the route's policy replaces the Gateway's");
    assert.equal(r2.retry.numRetries, 2, "the Gateway's policy applies to a route without its own");
  } finally {
    await g.close();
  }
  const text = mk(8080, [btpDoc({ name: 'orphan', route: 'no-such-route', numRetries: 1 })]);
  const file = write('btp-orphan.yaml', text);
  const r = runAigw(['validate', file]);
  const out = r.stdout + r.stderr;
  assert.notEqual(r.code, 0, `a BackendTrafficPolicy whose HTTPRoute does not exist:\n${out}`);
  const p = problemLines(out, file).find((x) => x.kind === 'BackendTrafficPolicy' && x.name === 'orphan' && /no-such-route/.test(x.message));
  assert.ok(p, out);
  assert.ok(p.line >= lineOf(text, 'name: orphan') && p.line <= lineOf(text, 'name: no-such-route'), `line ${p.line}`);
});

shutdownTest(() => [gw, gwGrant]);
