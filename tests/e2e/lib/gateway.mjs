// Spawns the real aigw binary (AIGW_BIN or <repo>/build/aigw) on free 127.0.0.1 ports, waits for
// its admin /health, captures stdout as JSON access-log lines and stderr as text, and stops it with
// SIGTERM (exit code checked), falling back to SIGKILL after a bound. Every spawned process is
// killed when the test process exits, even after a failure.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { REPO_ROOT } from './testdata.mjs';

export const AIGW_BIN = process.env.AIGW_BIN ? path.resolve(process.env.AIGW_BIN) : path.join(REPO_ROOT, 'build', 'aigw');

/** The ASan+UBSan build is slower: every bound is scaled by this factor. */
export const SANITIZED = process.env.AIGW_E2E_SANITIZED === '1';
export const SCALE = SANITIZED ? 5 : 1;
export const T = (ms) => Math.round(ms * SCALE);

/** The key the gateway is configured with (must reach the upstream) and the key the client
 * sends (must never reach the upstream, a log line or /metrics). */
export const UPSTREAM_KEY = 'sk-e2e-upstream-9f8e7d6c5b4a3928';
export const CLIENT_KEY = 'sk-e2e-client-should-not-leak-1234';

const live = new Set();
process.on('exit', () => {
  for (const p of live) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
});

export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** A port on which nothing listens (for "upstream unreachable"). */
export const closedPort = freePort;

export function tmpDir(prefix = 'aigw-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Resolves to the promise's value, or to `fallback` after ms; the timer never outlives the race. */
export function within(promise, ms, fallback = null) {
  let timer;
  const t = new Promise((resolve) => { timer = setTimeout(() => resolve(fallback), ms); });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** fetch bounded by a timeout. */
export async function fetchT(url, init = {}, timeoutMs = T(10_000)) {
  try {
    return await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    // undici hides the reason (ECONNREFUSED, ECONNRESET, timeout) in e.cause: surface it.
    const c = e.cause;
    const why = c ? `${c.code || c.name || ''} ${c.message || ''}`.trim() : e.message;
    const err = new Error(`${init.method || 'GET'} ${url} failed: ${why}`, { cause: e });
    err.name = e.name;
    throw err;
  }
}

function baseEnv() {
  // A config home that does not exist, so a developer's ~/.config/aigw/config.yaml never applies.
  const env = { AIGW_CONFIG_HOME: path.join(os.tmpdir(), 'aigw-e2e-no-config-home') };
  for (const k of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'ASAN_SYMBOLIZER_PATH']) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  return env;
}

/** Runs an aigw command to completion (e.g. version, --help) with a bound. */
export function runAigw(args, { env = {}, timeoutMs = T(10_000) } = {}) {
  const r = spawnSync(AIGW_BIN, args, { env: { ...baseEnv(), ...env }, timeout: timeoutMs, encoding: 'utf8' });
  return { code: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error };
}

export class Gateway {
  constructor(opts) {
    this.opts = opts;
    this.logs = [];            // parsed JSON access-log lines (stdout)
    this.nonJsonStdout = [];   // stdout lines that are not JSON (should stay empty)
    this.stderr = '';
    this.exited = null;        // { code, signal } once the process ended
  }

  get url() { return `http://127.0.0.1:${this.port}`; }
  get baseURL() { return `${this.url}/v1`; }
  get adminURL() { return `http://127.0.0.1:${this.adminPort}`; }
  get pid() { return this.proc.pid; }
  get alive() { return this.exited === null; }

  async start() {
    const o = this.opts;
    this.port = o.port ?? await freePort();
    this.adminPort = o.adminPort ?? await freePort();
    const args = ['run'];
    if (o.config !== undefined && o.config !== null) {
      this.dir = tmpDir();
      this.configPath = path.join(this.dir, 'config.yaml');
      const text = typeof o.config === 'function' ? o.config(this) : o.config;
      fs.writeFileSync(this.configPath, text);
      args.push(this.configPath);
    }
    args.push('--port', String(this.port), '--admin-port', String(this.adminPort), '--workers', String(o.workers ?? 2),
      '--listen-address', '127.0.0.1');
    if (o.debug) args.push('--debug');
    args.push(...(o.args || []));
    this.args = args;
    const env = { ...baseEnv(), ...(o.env || {}) };
    for (const [k, v] of Object.entries(env)) if (v === undefined || v === null) delete env[k];
    this.proc = spawn(AIGW_BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.proc);
    this.exitPromise = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exited = { code, signal };
        live.delete(this.proc);
        resolve(this.exited);
      });
      this.proc.on('error', (err) => {
        this.spawnError = err;
        this.exited = { code: null, signal: null, error: err };
        live.delete(this.proc);
        resolve(this.exited);
      });
    });
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      if (!line.trim()) return;
      try { this.logs.push(JSON.parse(line)); } catch { this.nonJsonStdout.push(line); }
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => {
      if (this.stderr.length < 4 << 20) this.stderr += d;
    });
    if (o.waitReady !== false) await this.waitHealthy(o.readyTimeoutMs ?? T(10_000));
    return this;
  }

  async waitHealthy(timeoutMs = T(10_000)) {
    const deadline = Date.now() + timeoutMs;
    let lastErr = null;
    while (Date.now() < deadline) {
      if (!this.alive) {
        throw new Error(`aigw exited before becoming healthy (${JSON.stringify(this.exited)}); args: ${this.args.join(' ')}\nstderr:\n${this.stderr.slice(-4000)}`);
      }
      try {
        const r = await fetch(`${this.adminURL}/health`, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        if (r.status === 200) return;
        lastErr = `status ${r.status}`;
      } catch (e) {
        lastErr = e.message;
      }
      await sleep(50);
    }
    this.kill();
    throw new Error(`aigw not healthy within ${timeoutMs} ms (${lastErr}); args: ${this.args.join(' ')}\nstderr:\n${this.stderr.slice(-4000)}`);
  }

  /** Sends a signal and waits for exit; SIGKILL after timeoutMs (and throws). Returns { code, signal }. */
  async stop({ signal = 'SIGTERM', timeoutMs = T(10_000), expectCode = 0 } = {}) {
    if (this.alive) {
      try { this.proc.kill(signal); } catch { /* already gone */ }
      const r = await within(this.exitPromise, timeoutMs, null);
      if (r === null) {
        this.kill();
        await this.exitPromise;
        throw new Error(`aigw did not exit within ${timeoutMs} ms of ${signal}; killed.\nstderr:\n${this.stderr.slice(-4000)}`);
      }
    }
    const ex = this.exited;
    if (expectCode !== null && (ex.code !== expectCode || ex.signal)) {
      throw new Error(`aigw exit: ${JSON.stringify(ex)}, expected code ${expectCode}\nstderr:\n${this.stderr.slice(-6000)}`);
    }
    return ex;
  }

  kill() {
    if (this.alive) { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } }
  }

  /** Stop for after() hooks: SIGTERM, never throws, always leaves the process dead. Returns exit info. */
  async close() {
    try { return await this.stop({ expectCode: null }); } catch { this.kill(); return this.exited; } finally {
      if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  async waitForLogs(n, timeoutMs = T(5000)) {
    const deadline = Date.now() + timeoutMs;
    while (this.logs.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} access-log lines, have ${this.logs.length}; stdout non-JSON: ${this.nonJsonStdout.slice(-3).join(' | ')}`);
      await sleep(10);
    }
    return this.logs;
  }

  /** Waits until no access-log line has arrived for quietMs; returns the count. */
  async settleLogs(quietMs = 150, timeoutMs = T(3000)) {
    const deadline = Date.now() + timeoutMs;
    let n = this.logs.length;
    let since = Date.now();
    while (Date.now() - since < quietMs && Date.now() < deadline) {
      await sleep(10);
      if (this.logs.length !== n) { n = this.logs.length; since = Date.now(); }
    }
    return this.logs.length;
  }

  async metricsText() {
    const r = await fetchT(`${this.adminURL}/metrics`);
    if (r.status !== 200) throw new Error(`/metrics status ${r.status}`);
    return r.text();
  }

  /** Resident set size in bytes (from /proc/<pid>/status VmRSS). */
  rss() {
    const s = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(s);
    return m ? Number(m[1]) * 1024 : 0;
  }

  /** An official OpenAI SDK client aimed at the gateway. client.sent records each request the SDK
   * made (url, method, headers, exact body string) so tests compare it with what the upstream got. */
  client(opts = {}) {
    const sent = [];
    const c = new OpenAI({
      apiKey: CLIENT_KEY,
      baseURL: this.baseURL,
      maxRetries: 0,
      timeout: T(15_000),
      fetch: async (url, init = {}) => {
        sent.push({ url: String(url), method: init.method, headers: init.headers, body: init.body });
        return fetch(url, init);
      },
      ...opts,
    });
    c.sent = sent;
    return c;
  }
}

export async function startGateway(opts = {}) {
  const g = new Gateway(opts);
  await g.start();
  return g;
}

/** Environment that auto-configures the gateway for one OpenAI upstream (the fake). */
export function openaiEnv(fake, extra = {}) {
  return {
    OPENAI_API_KEY: UPSTREAM_KEY,
    OPENAI_BASE_URL: `${fake.origin}/v1`,
    ...extra,
  };
}

/** A minimal multi-document config: one route per entry of `routes` ({ model, backends: [{ name,
 * port, override, weight, priority, key, tls: { hostname } }] }), every backend on 127.0.0.1. */
export function yamlConfig({ port, routes, models = null }) {
  const docs = [];
  docs.push(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: aigw-e2e
  namespace: default
spec:
  gatewayClassName: aigw-e2e
  listeners:
    - name: http
      protocol: HTTP
      port: ${port}`);
  const rules = routes.map((r) => `    - matches:
        - headers:
            - type: Exact
              name: x-ai-eg-model
              value: ${r.model}
      backendRefs:
${r.backends.map((b) => `        - name: ${b.name}` +
    (b.override ? `\n          modelNameOverride: ${b.override}` : '') +
    (b.weight !== undefined ? `\n          weight: ${b.weight}` : '') +
    (b.priority !== undefined ? `\n          priority: ${b.priority}` : '')).join('\n')}`).join('\n');
  docs.push(`apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: AIGatewayRoute
metadata:
  name: aigw-e2e-route
  namespace: default
spec:
  parentRefs:
    - name: aigw-e2e
      kind: Gateway
      group: gateway.networking.k8s.io
  rules:
${rules}`);
  const seen = new Set();
  for (const r of routes) {
    for (const b of r.backends) {
      if (seen.has(b.name)) continue;
      seen.add(b.name);
      docs.push(`apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: AIServiceBackend
metadata:
  name: ${b.name}
  namespace: default
spec:
  schema:
    name: OpenAI${b.version !== undefined ? `\n    version: "${b.version}"` : ''}
  backendRef:
    name: ${b.name}
    kind: Backend
    group: gateway.envoyproxy.io`);
      docs.push(`apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: ${b.name}
  namespace: default
spec:
  endpoints:
    - ip:
        address: 127.0.0.1
        port: ${b.port}`);
      if (b.key) {
        docs.push(`apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: BackendSecurityPolicy
metadata:
  name: ${b.name}-apikey
  namespace: default
spec:
  targetRefs:
    - group: aigateway.envoyproxy.io
      kind: AIServiceBackend
      name: ${b.name}
  type: APIKey
  apiKey:
    secretRef:
      name: ${b.name}-apikey
      namespace: default`);
        docs.push(`apiVersion: v1
kind: Secret
metadata:
  name: ${b.name}-apikey
  namespace: default
type: Opaque
stringData:
  apiKey: ${b.key}`);
      }
      if (b.tls) {
        docs.push(`apiVersion: gateway.networking.k8s.io/v1alpha3
kind: BackendTLSPolicy
metadata:
  name: ${b.name}-tls
  namespace: default
spec:
  targetRefs:
    - group: gateway.envoyproxy.io
      kind: Backend
      name: ${b.name}
  validation:
    wellKnownCACertificates: "System"
    hostname: ${b.tls.hostname}`);
      }
    }
  }
  void models;
  return docs.join('\n---\n') + '\n';
}

/** Asserts-friendly view of the OpenAI error envelope; returns the parsed body or throws. */
export function parseErrorEnvelope(text) {
  const j = JSON.parse(text);
  if (!j || typeof j !== 'object' || !j.error || typeof j.error !== 'object') throw new Error(`not an OpenAI error envelope: ${text}`);
  for (const k of ['message', 'type', 'param', 'code']) {
    if (!(k in j.error)) throw new Error(`error envelope lacks "${k}": ${text}`);
  }
  if (typeof j.error.message !== 'string' || !j.error.message) throw new Error(`error.message not a non-empty string: ${text}`);
  if (typeof j.error.type !== 'string' || !j.error.type) throw new Error(`error.type not a non-empty string: ${text}`);
  return j;
}
