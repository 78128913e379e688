// Builders for the reference's YAML resources (one string per document) used by the
// configuration, fallback, reload and TLS-listener tests, plus small helpers around them: line
// lookup for file:line:col assertions, concurrent request loops, chat requests by model, a
// self-signed CA and server certificate made with the openssl CLI in a temp dir (never committed).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { CLIENT_KEY, fetchT, T } from './gateway.mjs';

/** Joins documents into one multi-document YAML file. */
export function joinDocs(...docs) {
  return docs.flat().filter(Boolean).join('\n---\n') + '\n';
}

function indent(text, n) {
  const pad = ' '.repeat(n);
  return text.split('\n').map((l) => (l.trim() ? pad + l : l)).join('\n');
}

/** headerMutation: { set: [[name, value], ...], remove: [name, ...] } -> YAML lines (no indent). */
function headerMutationYaml(hm) {
  let s = 'headerMutation:';
  if (hm.set && hm.set.length) {
    s += '\n  set:';
    for (const [n, v] of hm.set) s += `\n    - name: ${JSON.stringify(n)}\n      value: ${JSON.stringify(v)}`;
  }
  if (hm.remove && hm.remove.length) {
    s += '\n  remove:';
    for (const n of hm.remove) s += `\n    - ${JSON.stringify(n)}`;
  }
  return s;
}

/** A Gateway with one listener; https: { secret } makes it an HTTPS listener. */
export function gatewayDoc({ name = 'aigw-e2e', ns = 'default', port, https = null } = {}) {
  let listener = `    - name: ${https ? 'https' : 'http'}
      protocol: ${https ? 'HTTPS' : 'HTTP'}
      port: ${port}`;
  if (https) {
    listener += `
      tls:
        mode: Terminate
        certificateRefs:
          - kind: Secret
            group: ""
            name: ${https.secret}${https.secretNs ? `\n            namespace: ${https.secretNs}` : ''}`;
  }
  return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  gatewayClassName: aigw-e2e
  listeners:
${listener}`;
}

/**
 * An AIGatewayRoute. rules: [{ model | models: [..] | matches: [[{type, name, value}]], backends:
 * [{ name, ns, weight, priority, override, headerMutation }], modelsOwnedBy, modelsCreatedAt }].
 */
export function routeDoc({ name = 'aigw-e2e-route', ns = 'default', gateway = 'aigw-e2e', rules }) {
  const ruleYaml = rules.map((r) => {
    let matches = r.matches;
    if (!matches) {
      const models = r.models || (r.model !== undefined ? [r.model] : []);
      matches = models.map((m) => [{ type: 'Exact', name: 'x-ai-eg-model', value: m }]);
    }
    let s = '- matches:';
    for (const m of matches) {
      s += '\n    - headers:';
      for (const h of m) s += `\n        - type: ${h.type || 'Exact'}\n          name: ${h.name}\n          value: ${JSON.stringify(h.value)}`;
    }
    s += '\n  backendRefs:';
    for (const b of r.backends) {
      s += `\n    - name: ${b.name}`;
      if (b.ns) s += `\n      namespace: ${b.ns}`;
      if (b.override) s += `\n      modelNameOverride: ${JSON.stringify(b.override)}`;
      if (b.weight !== undefined) s += `\n      weight: ${b.weight}`;
      if (b.priority !== undefined) s += `\n      priority: ${b.priority}`;
      if (b.headerMutation) s += '\n' + indent(headerMutationYaml(b.headerMutation), 6);
    }
    if (r.modelsOwnedBy) s += `\n  modelsOwnedBy: ${JSON.stringify(r.modelsOwnedBy)}`;
    if (r.modelsCreatedAt) s += `\n  modelsCreatedAt: ${JSON.stringify(r.modelsCreatedAt)}`;
    return indent(s, 4);
  }).join('\n');
  return `apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: AIGatewayRoute
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  parentRefs:
    - name: ${gateway}
      kind: Gateway
      group: gateway.networking.k8s.io
  rules:
${ruleYaml}`;
}

/**
 * AIServiceBackend + Backend (+ BackendSecurityPolicy and Secret when key is given, +
 * BackendTLSPolicy when tls is given). keyVia: 'stringData' (default), 'data' (base64),
 * { env: VAR } (substitution.aigw.run/env/apiKey) or { file: PATH } (substitution.aigw.run/file/apiKey).
 * tls: { hostname, caConfigMap?: { name, pem } } (caConfigMap: caCertificateRefs instead of System).
 */
export function backendDocs({ name, ns = 'default', port, host = '127.0.0.1', key = null, keyVia = 'stringData', headerMutation = null, tls = null }) {
  const docs = [];
  docs.push(`apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: AIServiceBackend
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  schema:
    name: OpenAI
  backendRef:
    name: ${name}
    kind: Backend
    group: gateway.envoyproxy.io${headerMutation ? '\n' + indent(headerMutationYaml(headerMutation), 2) : ''}`);
  const ep = /^[0-9.]+$/.test(host) ? `ip:\n        address: ${host}\n        port: ${port}` : `fqdn:\n        hostname: ${host}\n        port: ${port}`;
  docs.push(`apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  endpoints:
    - ${ep}`);
  if (key !== null) {
    docs.push(`apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: BackendSecurityPolicy
metadata:
  name: ${name}-apikey
  namespace: ${ns}
spec:
  targetRefs:
    - group: aigateway.envoyproxy.io
      kind: AIServiceBackend
      name: ${name}
  type: APIKey
  apiKey:
    secretRef:
      name: ${name}-apikey
      namespace: ${ns}`);
    let secret = `apiVersion: v1
kind: Secret
metadata:
  name: ${name}-apikey
  namespace: ${ns}`;
    if (keyVia && keyVia.env) secret += `\n  annotations:\n    substitution.aigw.run/env/apiKey: ${keyVia.env}\ntype: Opaque`;
    else if (keyVia && keyVia.file) secret += `\n  annotations:\n    substitution.aigw.run/file/apiKey: ${JSON.stringify(keyVia.file)}\ntype: Opaque`;
    else if (keyVia === 'data') secret += `\ntype: Opaque\ndata:\n  apiKey: ${Buffer.from(key).toString('base64')}`;
    else secret += `\ntype: Opaque\nstringData:\n  apiKey: ${key}`;
    docs.push(secret);
  }
  if (tls) {
    const validation = tls.caConfigMap
      ? `    caCertificateRefs:
      - group: ""
        kind: ConfigMap
        name: ${tls.caConfigMap.name}
    hostname: ${tls.hostname}`
      : `    wellKnownCACertificates: "System"
    hostname: ${tls.hostname}`;
    docs.push(`apiVersion: gateway.networking.k8s.io/v1alpha3
kind: BackendTLSPolicy
metadata:
  name: ${name}-tls
  namespace: ${ns}
spec:
  targetRefs:
    - group: gateway.envoyproxy.io
      kind: Backend
      name: ${name}
  validation:
${validation}`);
    if (tls.caConfigMap) {
      docs.push(`apiVersion: v1
kind: ConfigMap
metadata:
  name: ${tls.caConfigMap.name}
  namespace: ${ns}
data:
  ca.crt: |
${indent(tls.caConfigMap.pem.trim(), 4)}`);
    }
  }
  return docs;
}

/** BackendTrafficPolicy targeting the HTTPRoute generated for an AIGatewayRoute (same name). */
export function btpDoc({ name, ns = 'default', route, numRetries = 3, perRetryTimeout = null, baseInterval = '10ms', maxInterval = '50ms',
  triggers = ['connect-failure', 'retriable-status-codes'], httpStatusCodes = [503], passive = null }) {
  let s = `apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
      name: ${route}
  retry:
    numRetries: ${numRetries}
    perRetry:${perRetryTimeout ? `\n      timeout: ${perRetryTimeout}` : ''}
      backOff:
        baseInterval: ${baseInterval}
        maxInterval: ${maxInterval}
    retryOn:
      triggers:
${triggers.map((t) => `        - ${t}`).join('\n')}` +
    (httpStatusCodes.length ? `\n      httpStatusCodes:\n${httpStatusCodes.map((c) => `        - ${c}`).join('\n')}` : '');
  if (passive) {
    s += `
  healthCheck:
    passive:
      consecutive5XxErrors: ${passive.consecutive5XxErrors ?? 1}
      consecutiveLocalOriginFailures: ${passive.consecutive5XxErrors ?? 1}
      baseEjectionTime: ${passive.baseEjectionTime}
      interval: ${passive.interval ?? '1s'}
      maxEjectionPercent: 100`;
  }
  return s;
}

/** ReferenceGrant in the backend's namespace letting AIGatewayRoutes of fromNs reference AIServiceBackends. */
export function referenceGrantDoc({ name = 'allow-routes', ns, fromNs, toKind = 'AIServiceBackend', fromKind = 'AIGatewayRoute',
  fromGroup = 'aigateway.envoyproxy.io', toGroup = 'aigateway.envoyproxy.io' }) {
  return `apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  from:
    - group: ${JSON.stringify(fromGroup)}
      kind: ${fromKind}
      namespace: ${fromNs}
  to:
    - group: ${JSON.stringify(toGroup)}
      kind: ${toKind}`;
}

/** A kubernetes.io/tls Secret with data tls.crt / tls.key (base64). */
export function tlsSecretDoc({ name = 'tls-secret', ns = 'default', certPem, keyPem, type = 'kubernetes.io/tls' }) {
  return `apiVersion: v1
kind: Secret
metadata:
  name: ${name}
  namespace: ${ns}
type: ${type}
data:
  tls.crt: ${Buffer.from(certPem).toString('base64')}
  tls.key: ${Buffer.from(keyPem).toString('base64')}`;
}

/** 1-based line of the first line of text containing needle after the line containing `after` (if given). */
export function lineOf(text, needle, after = null) {
  const lines = text.split('\n');
  let start = 0;
  if (after !== null) {
    start = lines.findIndex((l) => l.includes(after));
    if (start < 0) throw new Error(`lineOf: anchor ${JSON.stringify(after)} not found`);
  }
  for (let i = start; i < lines.length; i++) if (lines[i].includes(needle)) return i + 1;
  throw new Error(`lineOf: ${JSON.stringify(needle)} not found`);
}

/** Problem lines "file:line:col: Kind ns/name: message" in output; returns [{ file, line, col, kind, ns, name, message }]. */
export function problemLines(output, file) {
  const out = [];
  for (const l of output.split('\n')) {
    if (!l.startsWith(`${file}:`)) continue;
    const m = /^(.*?):(\d+):(\d+): (\S+) ([^/\s]+)\/(\S+): (.+)$/.exec(l);
    if (m) out.push({ file: m[1], line: Number(m[2]), col: Number(m[3]), kind: m[4], ns: m[5], name: m[6], message: m[7], text: l });
  }
  return out;
}

/** One chat completion for `model` through the gateway (raw fetch); resolves { status, text, json, ms }. */
export async function chat(gw, model, { headers = {}, content = 'hi', timeoutMs = T(10_000), url = null } = {}) {
  const t0 = performance.now();
  const res = await fetchT(`${url || gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}`, ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
  }, timeoutMs);
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = null; }
  return { status: res.status, text, json, ms: performance.now() - t0, headers: res.headers };
}

/** Runs fn(i) for i in [0, n) with at most `concurrency` in flight; resolves to the results in order. */
export async function runConcurrent(n, concurrency, fn) {
  const results = new Array(n);
  let next = 0;
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      try { results[i] = await fn(i); } catch (e) { results[i] = { error: e }; }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return results;
}

/** Normal-approximation bounds for a binomial count: n trials, probability p, k sigmas. */
export function binomialBounds(n, p, k = 5) {
  const mean = n * p;
  const sigma = Math.sqrt(n * p * (1 - p));
  return { mean, sigma, lo: Math.floor(mean - k * sigma), hi: Math.ceil(mean + k * sigma) };
}

/**
 * A CA and a server certificate for localhost / 127.0.0.1 signed by it, made in dir with the
 * openssl CLI. Returns { caPem, certPem, keyPem, caPath, certPath, keyPath }.
 */
export function makeCerts(dir, { cn = 'localhost', san = 'DNS:localhost,IP:127.0.0.1', prefix = '' } = {}) {
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const f = (n) => `${prefix}${n}`;
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', `/CN=aigw e2e ${prefix}ca`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', `/CN=${cn}`);
  fs.writeFileSync(path.join(dir, f('ext.cnf')),
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
  run('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  const p = (n) => path.join(dir, f(n));
  return {
    caPath: p('ca.pem'), certPath: p('server.pem'), keyPath: p('server.key'),
    caPem: fs.readFileSync(p('ca.pem'), 'utf8'), certPem: fs.readFileSync(p('server.pem'), 'utf8'), keyPem: fs.readFileSync(p('server.key'), 'utf8'),
  };
}

/** Writes a file atomically (temp file in the same directory, then rename). */
export function writeAtomic(file, text) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}
