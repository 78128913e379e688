// bench/mcp_bench.mjs - the MCP benchmark (`make bench-mcp`, or `node bench/mcp_bench.mjs [options]`).
// Measures tools/call latency and session set-up through aigw against the same MCP backend called
// directly (and through nginx proxy_pass, the cost of any proxy on this topology), call by call
// interleaved so every target sees the same conditions; prints a table and PASS/FAIL for
// "aigw's added p50 < 0.3 ms". 127.0.0.1 only; stops everything it started; results in bench/results/.
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import crypto from 'node:crypto';
import readline from 'node:readline';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');

// ------------------------------------------------------------------------------------------ options
const USAGE = `Usage: node bench/mcp_bench.mjs [options]      (make bench-mcp BENCH_MCP_ARGS="...")

Targets, on 127.0.0.1, measured in the same run, interleaved call by call (rotating order):
  direct   client -> the MCP backend (Node, official SDK, stateful, tool "echo")
  nginx    client -> nginx proxy_pass (keepalive upstream, buffering off) -> backend
  aigw     client -> aigw --mcp-json (one backend: names unprefixed) -> backend
Modes: json (backend answers application/json) and sse (backend answers text/event-stream).

Options:
  --quick             1 round of 500 calls, 60 sessions, 1 s throughput runs (about 25 s; one round
                      is a rough check only on a shared machine)
  --rounds N          rounds of interleaved calls (default 3)
  --calls N           tools/call per target, mode and round (default 1000)
  --warmup N          calls per target and mode before measuring (default 1000: the Node backend keeps
                      getting faster for a few thousand calls as its JIT warms up)
  --sessions N        sessions set up (initialize + notifications/initialized) per target and mode (default 200)
  --tput-seconds S    seconds per throughput run at --conns (default 2; 0 = skip)
  --conns N           concurrent calls in the throughput runs (default 8)
  --modes LIST        json,sse (default both)
  --only LIST         targets among direct,nginx,aigw (default all; direct is always measured)
  --sut-cpus LIST     taskset CPU list of the proxies under test (default 0)
  --load-cpus LIST    taskset CPU list of this client and the backend (default 1)
  --no-pin            no taskset
  --aigw PATH         aigw binary (default build/aigw; a copy of it is run)
  --protocol V        MCP protocol version the client asks for (default 2025-11-25)
  --threshold-ms X    the criterion: aigw's added p50 below X ms (default 0.3)
  --wait-quiet S      before each round, wait up to S s for the machine to be under 30% busy (default 0)
  --out DIR           results folder (default bench/results/mcp-<YYYYmmdd-HHMMSS>)
  --strict            exit 1 when the criterion fails or is not measured
  -h, --help          this text`;

const opt = {
  rounds: 3, calls: 1000, warmup: 1000, sessions: 200, tputSeconds: 2, conns: 8, modes: ['json', 'sse'],
  targets: ['direct', 'nginx', 'aigw'], sutCpus: '0', loadCpus: '1', pin: true, aigw: path.join(ROOT, 'build', 'aigw'),
  protocol: '2025-11-25', thresholdMs: 0.3, waitQuiet: 0, out: '', strict: false,
};
function die(msg) { process.stderr.write(`bench-mcp: ${msg}\n`); process.exit(2); }
{
  const a = process.argv.slice(2);
  const num = (i, name) => {
    const v = a[i + 1];
    if (v === undefined || !/^\d+(\.\d+)?$/.test(v)) die(`${name} needs a number (got '${v ?? ''}')`);
    return Number(v);
  };
  for (let i = 0; i < a.length; i++) {
    const k = a[i];
    switch (k) {
      case '--quick': Object.assign(opt, { rounds: 1, calls: 500, warmup: 1000, sessions: 60, tputSeconds: 1 }); break;
      case '--rounds': opt.rounds = num(i++, k); break;
      case '--calls': opt.calls = num(i++, k); break;
      case '--warmup': opt.warmup = num(i++, k); break;
      case '--sessions': opt.sessions = num(i++, k); break;
      case '--tput-seconds': opt.tputSeconds = num(i++, k); break;
      case '--conns': opt.conns = num(i++, k); break;
      case '--threshold-ms': opt.thresholdMs = num(i++, k); break;
      case '--wait-quiet': opt.waitQuiet = num(i++, k); break;
      case '--modes': opt.modes = (a[++i] ?? '').split(',').filter(Boolean); break;
      case '--only': opt.targets = (a[++i] ?? '').split(',').filter(Boolean); break;
      case '--sut-cpus': opt.sutCpus = a[++i] ?? ''; break;
      case '--load-cpus': opt.loadCpus = a[++i] ?? ''; break;
      case '--no-pin': opt.pin = false; break;
      case '--aigw': opt.aigw = path.resolve(a[++i] ?? ''); break;
      case '--protocol': opt.protocol = a[++i] ?? ''; break;
      case '--out': opt.out = path.resolve(a[++i] ?? ''); break;
      case '--strict': opt.strict = true; break;
      case '-h': case '--help': process.stdout.write(`${USAGE}\n`); process.exit(0); break;
      default: process.stderr.write(`${USAGE}\n`); die(`unknown option: ${k}`);
    }
  }
  if (opt.rounds < 1 || opt.calls < 10 || opt.sessions < 1 || opt.conns < 1) die('--rounds, --sessions and --conns must be >= 1, --calls >= 10');
  if (opt.calls * opt.rounds > 200_000 || opt.sessions > 5000 || opt.tputSeconds > 60 || opt.waitQuiet > 120) {
    die('bounded on purpose: calls x rounds <= 200000, sessions <= 5000, tput-seconds <= 60, wait-quiet <= 120');
  }
  if (!opt.modes.length || opt.modes.some((m) => m !== 'json' && m !== 'sse')) die('--modes takes json,sse');
  if (opt.targets.some((t) => !['direct', 'nginx', 'aigw'].includes(t))) die('--only takes direct,nginx,aigw');
  opt.targets = ['direct', 'nginx', 'aigw'].filter((t) => t === 'direct' || opt.targets.includes(t));
}
const MODE_PATH = { json: '/mcp', sse: '/mcp-sse' };
// A run never outlives this, whatever happens to the processes it waits on.
const DEADLINE_MS = 15 * 60_000;

// ------------------------------------------------------------------------------------------ output
const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
const OUT = opt.out || path.join(HERE, 'results', `mcp-${stamp}`);
fs.mkdirSync(path.join(OUT, 'logs'), { recursive: true });
const runLog = fs.createWriteStream(path.join(OUT, 'run.log'));
function log(msg) {
  const line = `[${new Date().toISOString().slice(11, 19)}] ${msg}\n`;
  process.stderr.write(line);
  runLog.write(line);
}

// ------------------------------------------------------------------------------------------ processes
// Every server runs in its own process group (detached) so that it and its children (nginx workers)
// are stopped together; all of them are stopped on any exit, SIGKILL as the last resort.
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-bench-mcp-'));
fs.chmodSync(TMP, 0o755); // nginx workers started by root run as nobody
const started = [];
function startServer(name, cpus, cmd, args, { stdin = 'ignore' } = {}) {
  const pin = opt.pin && cpus ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, args];
  const logFd = fs.openSync(path.join(OUT, 'logs', `${name}.log`), 'w');
  const p = spawn(pin[0], pin[1], { detached: true, stdio: [stdin, 'pipe', logFd] });
  fs.closeSync(logFd);
  p.name = name;
  p.exited = null;
  p.on('exit', (code, sig) => { p.exited = sig || `exit ${code}`; });
  started.push(p);
  return p;
}
function signalGroup(p, sig) { try { process.kill(-p.pid, sig); } catch { /* gone */ } }
async function stopAll() {
  for (const p of started.slice().reverse()) signalGroup(p, 'SIGTERM');
  const t0 = Date.now();
  while (started.some((p) => groupPids(p.pid).length) && Date.now() - t0 < 5000) await sleep(100);
  for (const p of started) signalGroup(p, 'SIGKILL');
  started.length = 0;
  fs.rmSync(TMP, { recursive: true, force: true });
}
process.on('exit', () => { for (const p of started) signalGroup(p, 'SIGKILL'); fs.rmSync(TMP, { recursive: true, force: true }); });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { log(`${sig}: stopping`); stopAll().finally(() => process.exit(130)); });
}
setTimeout(() => { log(`deadline of ${DEADLINE_MS / 60000} min reached: stopping`); stopAll().finally(() => process.exit(2)); },
  DEADLINE_MS).unref();

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}
async function waitListening(port, proc, ms) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (proc.exited) return false;
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return true;
    await sleep(50);
  }
  return false;
}

// ------------------------------------------------------------------------------------------ /proc
// CPU time in ns from schedstat, summed over every thread of every process of a process group:
// finer than the 10 ms ticks of /proc/<pid>/stat, so a few thousand calls are enough.
function groupPids(pgid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid) out.push(Number(d)); // field 5: pgrp
    } catch { /* exited meanwhile */ }
  }
  return out;
}
function processNs(pid) {
  let ns = 0, tasks = [];
  try { tasks = fs.readdirSync(`/proc/${pid}/task`); } catch { return 0; }
  for (const t of tasks) {
    try { ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { /* gone */ }
  }
  return ns;
}
function cpuNs(pgid) {
  return groupPids(pgid).reduce((a, pid) => a + processNs(pid), 0);
}
function rssKb(pgid) {
  let kb = 0;
  for (const pid of groupPids(pgid)) {
    try { kb += Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0); } catch { /* gone */ }
  }
  return kb;
}
// busy and total ticks per CPU
function cpuSnap() {
  const m = {};
  for (const l of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
    const f = l.split(/\s+/);
    if (!/^cpu\d+$/.test(f[0])) continue;
    const v = f.slice(1).map(Number);
    const busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    m[f[0].slice(3)] = { busy, total: busy + v[3] + v[4] };
  }
  return m;
}
function cpuList(list) {
  const out = [];
  for (const part of String(list).split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a; c <= (b ?? a); c++) out.push(String(c));
  }
  return out;
}
function busyPct(s1, s2, cpus) {
  let b = 0, t = 0;
  for (const c of cpus ?? Object.keys(s2)) {
    if (!s1[c] || !s2[c]) continue;
    b += s2[c].busy - s1[c].busy;
    t += s2[c].total - s1[c].total;
  }
  return t > 0 ? (100 * b) / t : NaN;
}
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
// CPU time of everything this benchmark runs: its servers and this client.
function ownNs() {
  return started.reduce((a, p) => a + cpuNs(p.pid), 0) + processNs(process.pid);
}
// The share of the machine busy with other work (other tenants' builds and tests), our own
// processes' CPU taken out: the backend still collecting garbage after a round is not "others".
async function waitQuiet() {
  const t0 = Date.now();
  const ncpu = Object.keys(cpuSnap()).length || 1;
  for (;;) {
    const s1 = cpuSnap(), o1 = ownNs(), w1 = process.hrtime.bigint();
    await sleep(500);
    const el = Number(process.hrtime.bigint() - w1);
    const busy = Math.max(0, busyPct(s1, cpuSnap()) - (100 * (ownNs() - o1)) / el / ncpu);
    if (!(busy > 30) || Date.now() - t0 >= opt.waitQuiet * 1000) return busy;
    await sleep(1000);
  }
}

// ------------------------------------------------------------------------------------------ HTTP
// One keep-alive connection per target for the sequential runs; bodies and headers are built before
// the clock starts; the clock stops when the last byte of the answer has arrived.
const ACCEPT = 'application/json, text/event-stream';
function request(agent, port, method, urlPath, headers, body) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const ns = Number(process.hrtime.bigint() - t0);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ns });
      });
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${urlPath}: no answer in 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}
function postHeaders(body, sid) {
  const h = { 'content-type': 'application/json', accept: ACCEPT, 'content-length': String(body.length) };
  if (sid) { h['mcp-session-id'] = sid; h['mcp-protocol-version'] = opt.protocol; }
  return h;
}
// The JSON-RPC message with this id in a JSON or SSE answer.
function findMessage(res, id) {
  const ct = String(res.headers['content-type'] || '');
  if (ct.startsWith('application/json')) {
    const m = JSON.parse(res.body);
    return m.id === id ? m : null;
  }
  if (ct.startsWith('text/event-stream')) {
    let data = [];
    for (const line of (res.body + '\n').split(/\r?\n/)) {
      if (line.startsWith('data:')) { data.push(line.slice(line[5] === ' ' ? 6 : 5)); continue; }
      if (line === '' && data.length) {
        const m = JSON.parse(data.join('\n'));
        if (m.id === id) return m;
        data = [];
      }
    }
  }
  return null;
}
const initBody = (id) => Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, method: 'initialize',
  params: { protocolVersion: opt.protocol, capabilities: {}, clientInfo: { name: 'aigw-bench-mcp', version: '1' } } }));
const initializedBody = Buffer.from(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
const callBody = (id, text) => Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call',
  params: { name: 'echo', arguments: { text } } }));

class BenchError extends Error {}
function expect(cond, what) { if (!cond) throw new BenchError(what); }

// initialize + notifications/initialized; returns the session id and the time of both POSTs.
async function openSession(tg) {
  const init = await request(tg.agent, tg.port, 'POST', tg.path, postHeaders(tg.initBuf), tg.initBuf);
  expect(init.status === 200, `${tg.name}: initialize answered HTTP ${init.status}: ${init.body.slice(0, 200)}`);
  const sid = init.headers['mcp-session-id'];
  expect(typeof sid === 'string' && sid.length > 0, `${tg.name}: initialize answered no Mcp-Session-Id`);
  const m = findMessage(init, 1);
  expect(m && m.result && m.result.capabilities && m.result.capabilities.tools, `${tg.name}: initialize result without tools capability`);
  const ack = await request(tg.agent, tg.port, 'POST', tg.path, postHeaders(initializedBody, sid), initializedBody);
  expect(ack.status === 202, `${tg.name}: notifications/initialized answered HTTP ${ack.status}`);
  return { sid, ns: init.ns + ack.ns };
}
async function closeSession(tg, sid) {
  const r = await request(tg.agent, tg.port, 'DELETE', tg.path, { 'mcp-session-id': sid, 'mcp-protocol-version': opt.protocol });
  expect(r.status === 200 || r.status === 204, `${tg.name}: DELETE answered HTTP ${r.status}`);
}
async function call(tg, agent, sid, id, body, text) {
  const r = await request(agent, tg.port, 'POST', tg.path, postHeaders(body, sid), body);
  expect(r.status === 200, `${tg.name}: tools/call answered HTTP ${r.status}: ${r.body.slice(0, 200)}`);
  const m = findMessage(r, id);
  expect(m && m.result && m.result.content && m.result.content[0] && m.result.content[0].text === text,
    `${tg.name}: tools/call id ${id}: unexpected answer ${r.body.slice(0, 200)}`);
  return r;
}

// ------------------------------------------------------------------------------------------ stats
function pct(sorted, p) { return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN; }
function stats(ns) {
  const s = Float64Array.from(ns, (v) => v / 1000).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return { n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), mean: s.length ? sum / s.length : NaN, max: s[s.length - 1] };
}
const median = (a) => { const s = a.filter(Number.isFinite).sort((x, y) => x - y); return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN; };
const f0 = (v) => (Number.isFinite(v) ? v.toFixed(0) : 'n/a');
const f1 = (v) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
const f3 = (v) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
const signed = (v) => (Number.isFinite(v) ? (v >= 0 ? `+${v.toFixed(0)}` : v.toFixed(0)) : 'n/a');
const rotate = (a, k) => a.map((_, i) => a[(i + k) % a.length]);

// ------------------------------------------------------------------------------------------ main
async function main() {
  for (const tool of ['node', ...(opt.pin ? ['taskset'] : []), ...(opt.targets.includes('nginx') ? ['nginx'] : [])]) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) die(`${tool} not found (run 'make deps')`);
  }
  if (!fs.existsSync(path.join(ROOT, 'tests', 'e2e', 'node_modules', '@modelcontextprotocol', 'sdk'))) {
    die('tests/e2e/node_modules/@modelcontextprotocol/sdk is missing (run \'make deps\')');
  }
  if (opt.pin) { // this client: every thread, and the threads it starts later, on the load CPUs
    const r = spawnSync('taskset', ['-a', '-p', '-c', opt.loadCpus, String(process.pid)], { encoding: 'utf8' });
    if (r.status !== 0) die(`taskset -p ${opt.loadCpus} failed: ${r.stderr}`);
  }
  log(`results -> ${OUT}`);

  // The backend, with the client on the load CPUs.
  const backend = startServer('backend', opt.loadCpus, process.execPath,
    [path.join(HERE, 'mcp_backend.mjs'), '--port', '0', '--stdin-lifeline'], { stdin: 'pipe' });
  const backendPort = await new Promise((resolve) => {
    const rl = readline.createInterface({ input: backend.stdout });
    const timer = setTimeout(() => resolve(0), 15_000);
    rl.once('line', (l) => { clearTimeout(timer); resolve(Number(/^listening (\d+)$/.exec(l)?.[1] ?? 0)); });
    backend.once('exit', () => resolve(0));
  });
  if (!backendPort) die(`the MCP backend did not start (see ${OUT}/logs/backend.log)`);
  log(`backend (Node ${process.version}, @modelcontextprotocol/sdk) on 127.0.0.1:${backendPort}, cpus ${opt.loadCpus}`);

  const targets = {};
  const notes = [];
  targets.direct = { name: 'direct', port: backendPort, pgid: null };
  let aigwVersion = '', aigwSha = '', nginxVersion = '';
  if (opt.targets.includes('nginx')) {
    const port = await freePort();
    const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `    ${k}_temp_path ${TMP}/${k};`).join('\n');
    const conf = `# generated by bench/mcp_bench.mjs: the nginx proxy_pass baseline
daemon off;
master_process on;
worker_processes 1;
pid ${TMP}/nginx.pid;
error_log ${TMP}/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    server_tokens off;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 100000000;
${temps}
    upstream mcp_backend {
        server 127.0.0.1:${backendPort};
        keepalive 32;
        keepalive_requests 100000000;
        keepalive_timeout 120s;
    }
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://mcp_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
`;
    fs.writeFileSync(path.join(OUT, 'nginx.conf'), conf);
    nginxVersion = spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, '');
    const p = startServer('nginx', opt.sutCpus, 'nginx', ['-p', TMP, '-e', `${TMP}/nginx-error.log`, '-c', path.join(OUT, 'nginx.conf')]);
    if (await waitListening(port, p, 10_000)) targets.nginx = { name: 'nginx', port, pgid: p.pid, proc: p };
    else notes.push(`nginx not measured: no listener (${p.exited ?? 'timeout'}; see logs/nginx.log)`);
  }
  if (opt.targets.includes('aigw')) {
    if (!fs.existsSync(opt.aigw)) {
      notes.push(`aigw not measured: ${opt.aigw} not found`);
    } else {
      // A snapshot of the binary: a rebuild by someone else during the run cannot change what is measured.
      const bin = path.join(TMP, 'bench-mcp-gateway');
      fs.copyFileSync(opt.aigw, bin);
      fs.chmodSync(bin, 0o755);
      aigwSha = crypto.createHash('sha256').update(fs.readFileSync(bin)).digest('hex').slice(0, 16);
      aigwVersion = spawnSync(bin, ['version'], { encoding: 'utf8' }).stdout.trim();
      // One aigw per mode (the JSON and the SSE endpoint of the backend), each a single-backend
      // route; only one of them is busy at a time. A fixed session seed: no random-seed warning.
      targets.aigw = { name: 'aigw', byMode: {} };
      for (const mode of opt.modes) {
        const port = await freePort();
        const admin = await freePort();
        const mcpJson = JSON.stringify({ mcpServers: { bench: { url: `http://127.0.0.1:${backendPort}${MODE_PATH[mode]}` } } });
        const args = ['run', '--port', String(port), '--admin-port', String(admin), '--workers', '1',
          '--listen-address', '127.0.0.1', '--no-access-log', '--mcp-session-seed', 'aigw-bench-mcp-session-seed-0001',
          '--mcp-json', mcpJson];
        const p = startServer(`aigw-${mode}`, opt.sutCpus, bin, args);
        targets.aigw.args = args;
        if (await waitListening(port, p, 15_000)) {
          targets.aigw.byMode[mode] = { port, pgid: p.pid, proc: p };
        } else {
          notes.push(`aigw (${mode}) not measured: no listener (${p.exited ?? 'timeout'}; see logs/aigw-${mode}.log)`);
        }
      }
    }
  }
  for (const n of notes) log(n);

  const env = {
    date: new Date().toISOString(),
    command: `node bench/mcp_bench.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    machine: `${os.cpus().length} CPUs, ${os.cpus()[0]?.model?.trim()}, kernel ${os.release()}, ${Math.round(os.totalmem() / 1048576)} MiB RAM`,
    loadavg: os.loadavg().map((v) => v.toFixed(2)).join(' '),
    aigw: aigwVersion ? `${aigwVersion} (binary sha256 ${aigwSha}...), aigw ${(targets.aigw?.args ?? []).slice(0, -2).join(' ')} --mcp-json '{"mcpServers":{"bench":{"url":"http://127.0.0.1:<backend>/mcp"}}}' (json; /mcp-sse for sse)` : 'not measured',
    tree: spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim(),
    nginx: nginxVersion || 'not measured',
    backend: `Node ${process.version}, @modelcontextprotocol/sdk ${JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/e2e/node_modules/@modelcontextprotocol/sdk/package.json'), 'utf8')).version}, McpServer + StreamableHTTPServerTransport, stateful`,
    pinning: opt.pin ? `proxies on CPU ${opt.sutCpus}, client and backend on CPU ${opt.loadCpus}` : 'none',
    load: `${opt.rounds} round(s) x ${opt.calls} sequential tools/call per target and mode (after ${opt.warmup} warm-up calls), ${opt.sessions} sessions per target and mode, ${opt.tputSeconds ? `${opt.tputSeconds} s at ${opt.conns} concurrent calls per target, mode and round` : 'no throughput runs'}; protocol ${opt.protocol}`,
  };
  fs.writeFileSync(path.join(OUT, 'env.json'), `${JSON.stringify(env, null, 2)}\n`);
  for (const [k, v] of Object.entries(env)) log(`${k}: ${v}`);

  const latCsv = fs.createWriteStream(path.join(OUT, 'calls.csv'));
  latCsv.write('mode,round,seq,target,ns\n');
  const sesCsv = fs.createWriteStream(path.join(OUT, 'sessions.csv'));
  sesCsv.write('mode,seq,target,ns\n');
  const roundCsv = fs.createWriteStream(path.join(OUT, 'rounds.csv'));
  roundCsv.write('mode,round,target,calls,p50_us,p90_us,p99_us,mean_us,proxy_cpu_us_per_call,box_busy_before_pct,box_others_during_pct,sut_core_busy_pct,others_on_sut_core_pct\n');
  const results = { env, modes: {}, notes };
  const t0 = Date.now();

  for (const mode of opt.modes) {
    // Targets of this mode, each with its own keep-alive connection and its own session.
    const tgs = [];
    for (const name of opt.targets) {
      let t = null;
      if (name === 'direct') t = { ...targets.direct };
      else if (name === 'nginx' && targets.nginx) t = { ...targets.nginx };
      else if (name === 'aigw' && targets.aigw?.byMode[mode]) t = { name, ...targets.aigw.byMode[mode] };
      if (!t) continue;
      // aigw serves its route at /mcp whichever backend endpoint (JSON or SSE) the route points to.
      t.path = name === 'aigw' ? '/mcp' : MODE_PATH[mode];
      t.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      t.initBuf = initBody(1);
      tgs.push(t);
    }
    const R = { targets: tgs.map((t) => t.name), calls: {}, sessions: {}, tput: {}, rounds: [] };
    results.modes[mode] = R;
    try {
      // Checks: a session, tools/list naming "echo" as it is (a single backend is unprefixed), one call.
      for (const t of tgs) {
        const { sid } = await openSession(t);
        t.sid = sid;
        const lb = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }));
        const lr = await request(t.agent, t.port, 'POST', t.path, postHeaders(lb, sid), lb);
        const lm = lr.status === 200 ? findMessage(lr, 2) : null;
        expect(lm && lm.result && lm.result.tools.some((x) => x.name === 'echo'), `${t.name}: tools/list has no "echo": ${lr.body.slice(0, 200)}`);
        const cr = await call(t, t.agent, sid, 3, callBody(3, 'check'), 'check');
        const ct = String(cr.headers['content-type']);
        expect(ct.startsWith(mode === 'json' ? 'application/json' : 'text/event-stream'), `${t.name}: ${mode} answer came as ${ct}`);
      }
      log(`${mode}: checks passed for ${tgs.map((t) => t.name).join(', ')}; measuring`);

      // The SDK's stateful transport keeps a few KB per call until its session is deleted (seen with
      // 1.32.2): a fresh session per round keeps the backend's heap, and so its GC pauses, the same
      // from round to round instead of growing through the run.
      const freshSessions = async () => {
        for (const t of tgs) {
          await closeSession(t, t.sid);
          t.sid = (await openSession(t)).sid;
        }
      };
      // Bodies for every call, the same bytes for every target; ids unique within the session.
      const total = opt.warmup + opt.rounds * opt.calls;
      const bodies = Array.from({ length: total }, (_, i) => callBody(100 + i, `bench-${i}`));
      await freshSessions();
      for (let i = 0; i < opt.warmup; i++) {
        for (const t of rotate(tgs, i % tgs.length)) await call(t, t.agent, t.sid, 100 + i, bodies[i], `bench-${i}`);
      }
      for (const t of tgs) R.calls[t.name] = [];
      for (let r = 1; r <= opt.rounds; r++) {
        await freshSessions();
        const boxBusy = await waitQuiet();
        const per = Object.fromEntries(tgs.map((t) => [t.name, []]));
        const c1 = tgs.map((t) => (t.pgid ? cpuNs(t.pgid) : 0));
        const o1 = ownNs();
        const s1 = cpuSnap();
        const w1 = Date.now();
        for (let k = 0; k < opt.calls; k++) {
          const i = opt.warmup + (r - 1) * opt.calls + k;
          for (const t of rotate(tgs, k % tgs.length)) {
            const res = await call(t, t.agent, t.sid, 100 + i, bodies[i], `bench-${i}`);
            per[t.name].push(res.ns);
          }
        }
        const el = (Date.now() - w1) / 1000;
        const s2 = cpuSnap();
        const c2 = tgs.map((t) => (t.pgid ? cpuNs(t.pgid) : 0));
        const sutBusy = busyPct(s1, s2, cpuList(opt.sutCpus));
        const proxiesPct = tgs.reduce((a, t, j) => a + (t.pgid ? (c2[j] - c1[j]) / 1e7 / el / cpuList(opt.sutCpus).length : 0), 0);
        // Meaningless when the proxies share their CPUs with the client and the backend.
        const shared = cpuList(opt.sutCpus).some((c) => cpuList(opt.loadCpus).includes(c));
        const others = shared ? NaN : Math.max(0, sutBusy - proxiesPct);
        // the whole machine minus this benchmark's processes: other tenants on any CPU during the round
        const boxOthers = Math.max(0, busyPct(s1, s2) - (100 * (ownNs() - o1)) / 1e9 / el / Object.keys(s2).length);
        const row = { round: r, boxBusy, boxOthers, sutBusy, others, targets: {} };
        tgs.forEach((t, j) => {
          const st = stats(per[t.name]);
          const cpu = t.pgid ? (c2[j] - c1[j]) / 1000 / per[t.name].length : NaN;
          row.targets[t.name] = { ...st, cpuUsPerCall: cpu };
          R.calls[t.name].push(...per[t.name]);
          for (let k = 0; k < per[t.name].length; k++) latCsv.write(`${mode},${r},${k},${t.name},${per[t.name][k]}\n`);
          roundCsv.write(`${mode},${r},${t.name},${st.n},${f1(st.p50)},${f1(st.p90)},${f1(st.p99)},${f1(st.mean)},${f1(cpu)},${f0(boxBusy)},${f0(boxOthers)},${f0(sutBusy)},${f0(others)}\n`);
        });
        R.rounds.push(row);
        const d = row.targets.direct;
        const added = tgs.filter((t) => t.name !== 'direct').map((t) => `${t.name} ${signed(row.targets[t.name].p50 - d.p50)}`);
        log(`${mode} round ${r}/${opt.rounds}: ${tgs.map((t) => `${t.name} p50 ${f0(row.targets[t.name].p50)} p99 ${f0(row.targets[t.name].p99)} us${t.pgid ? ` (cpu ${f1(row.targets[t.name].cpuUsPerCall)} us/call)` : ''}`).join(', ')}${added.length ? `; added p50 ${added.join(', ')} us` : ''} (others: ${f0(boxBusy)}% of the machine before, ${f0(boxOthers)}% during${Number.isFinite(others) ? `, ${f0(others)}% of CPU ${opt.sutCpus}` : ''})`);
      }

      // Session set-up, interleaved like the calls; each session is deleted (not timed) afterwards.
      for (const t of tgs) R.sessions[t.name] = [];
      const sc1 = tgs.map((t) => (t.pgid ? cpuNs(t.pgid) : 0));
      for (let i = 0; i < opt.sessions; i++) {
        for (const t of rotate(tgs, i % tgs.length)) {
          const s = await openSession(t);
          R.sessions[t.name].push(s.ns);
          sesCsv.write(`${mode},${i},${t.name},${s.ns}\n`);
          await closeSession(t, s.sid);
        }
      }
      R.sessionCpu = Object.fromEntries(tgs.map((t, j) => [t.name, t.pgid ? (cpuNs(t.pgid) - sc1[j]) / 1000 / opt.sessions : NaN]));
      log(`${mode}: session set-up ${tgs.map((t) => `${t.name} p50 ${f0(stats(R.sessions[t.name]).p50)} us`).join(', ')}`);

      // Throughput at --conns concurrent calls on one session, rounds of target after target.
      if (opt.tputSeconds > 0) {
        for (const t of tgs) R.tput[t.name] = [];
        let nextId = 1_000_000;
        for (let r = 1; r <= opt.rounds; r++) {
          for (const t of tgs) {
            await freshSessions();
            const agent = new http.Agent({ keepAlive: true, maxSockets: opt.conns });
            const c1 = t.pgid ? cpuNs(t.pgid) : 0;
            const lat = [];
            const tEnd = Date.now() + opt.tputSeconds * 1000;
            const w1 = process.hrtime.bigint();
            await Promise.all(Array.from({ length: opt.conns }, async () => {
              while (Date.now() < tEnd) {
                const id = nextId++;
                const res = await call(t, agent, t.sid, id, callBody(id, `t${id}`), `t${id}`);
                lat.push(res.ns);
              }
            }));
            const el = Number(process.hrtime.bigint() - w1) / 1e9;
            const cpu = t.pgid ? (cpuNs(t.pgid) - c1) / 1000 / lat.length : NaN;
            agent.destroy();
            const st = stats(lat);
            R.tput[t.name].push({ rps: lat.length / el, p50: st.p50, p99: st.p99, cpuUsPerCall: cpu, rssKb: t.pgid ? rssKb(t.pgid) : NaN });
          }
        }
        for (const t of tgs) await closeSession(t, t.sid);
        log(`${mode}: throughput (c=${opt.conns}) ${tgs.map((t) => `${t.name} ${f0(median(R.tput[t.name].map((x) => x.rps)))} calls/s`).join(', ')}`);
      }
    } catch (e) {
      if (!(e instanceof BenchError) && !/ECONNRESET|ECONNREFUSED|no answer/.test(String(e.message))) throw e;
      R.error = e.message;
      log(`${mode}: stopped: ${e.message}`);
    } finally {
      for (const t of tgs) t.agent.destroy();
    }
  }
  for (const p of started) if (p.exited) notes.push(`${p.name} stopped during the run (${p.exited}); see logs/${p.name}.log`);
  const elapsed = (Date.now() - t0) / 1000;
  await stopAll();
  await new Promise((r) => latCsv.end(r));
  await new Promise((r) => sesCsv.end(r));
  await new Promise((r) => roundCsv.end(r));

  // ---------------------------------------------------------------------------------------- report
  const lines = [];
  const verdicts = [];
  let anyFail = false;
  lines.push('| mode | target | calls | p50 us | p90 us | p99 us | mean us | added p50 us | added p90 us | added p99 us | added mean us | proxy CPU us/call |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [mode, R] of Object.entries(results.modes)) {
    const d = R.calls.direct?.length ? stats(R.calls.direct) : null;
    for (const name of R.targets) {
      if (!R.calls[name]?.length) continue;
      const st = stats(R.calls[name]);
      const cpu = median(R.rounds.map((x) => x.targets[name]?.cpuUsPerCall));
      const add = (k) => (name === 'direct' || !d ? '-' : signed(st[k] - d[k]));
      lines.push(`| ${mode} | ${name} | ${st.n} | ${f0(st.p50)} | ${f0(st.p90)} | ${f0(st.p99)} | ${f0(st.mean)} | ${add('p50')} | ${add('p90')} | ${add('p99')} | ${add('mean')} | ${name === 'direct' ? '-' : f1(cpu)} |`);
      R.summary = R.summary || {};
      R.summary[name] = { ...st, cpuUsPerCall: cpu };
    }
  }
  const sesLines = ['| mode | target | sessions | set-up p50 us | set-up p99 us | added p50 us | added p99 us | proxy CPU us/session |', '|---|---|---:|---:|---:|---:|---:|---:|'];
  for (const [mode, R] of Object.entries(results.modes)) {
    const d = R.sessions.direct?.length ? stats(R.sessions.direct) : null;
    for (const name of R.targets) {
      if (!R.sessions[name]?.length) continue;
      const st = stats(R.sessions[name]);
      const add = (k) => (name === 'direct' || !d ? '-' : signed(st[k] - d[k]));
      sesLines.push(`| ${mode} | ${name} | ${st.n} | ${f0(st.p50)} | ${f0(st.p99)} | ${add('p50')} | ${add('p99')} | ${name === 'direct' ? '-' : f1(R.sessionCpu?.[name])} |`);
    }
  }
  const tputLines = [`| mode | target | calls/s (c=${opt.conns}) | p50 us | p99 us | proxy CPU us/call | proxy RSS MiB |`, '|---|---|---:|---:|---:|---:|---:|'];
  for (const [mode, R] of Object.entries(results.modes)) {
    for (const name of R.targets) {
      const runs = R.tput[name];
      if (!runs?.length) continue;
      const m = (k) => median(runs.map((x) => x[k]));
      tputLines.push(`| ${mode} | ${name} | ${f0(m('rps'))} | ${f0(m('p50'))} | ${f0(m('p99'))} | ${name === 'direct' ? '-' : f1(m('cpuUsPerCall'))} | ${name === 'direct' ? '-' : f1(m('rssKb') / 1024)} |`);
    }
  }
  // The criterion takes, per mode, the median over rounds of aigw's added p50 within each round (as
  // bench/run.sh does): a round disturbed by other tenants moves it less than it moves pooled figures.
  const disturbed = (x) => Math.max(...[x.boxBusy, x.boxOthers, x.others].filter(Number.isFinite), 0) > 30;
  const crit = {};
  for (const mode of opt.modes) {
    const R = results.modes[mode];
    const a = R?.summary?.aigw, d = R?.summary?.direct;
    if (!a || !d || R.error) continue;
    const per = R.rounds.map((x) => x.targets.aigw.p50 - x.targets.direct.p50);
    const perNginx = R.summary.nginx ? R.rounds.map((x) => x.targets.nginx.p50 - x.targets.direct.p50) : [];
    crit[mode] = {
      added: median(per) / 1000, pooled: (a.p50 - d.p50) / 1000, per, nginx: perNginx.length ? median(perNginx) / 1000 : NaN,
      disturbed: R.rounds.filter(disturbed).length, rounds: R.rounds.length,
    };
  }
  verdicts.push('| criterion | measured | required | verdict |', '|---|---|---|---|');
  for (const mode of opt.modes) {
    const c = crit[mode];
    const R = results.modes[mode];
    let v = 'n/a', measured = `not measured${R?.error ? `: ${R.error}` : ''}`;
    if (c) {
      v = c.added < opt.thresholdMs ? 'PASS' : 'FAIL';
      measured = `${f3(c.added)} ms, median of the rounds' ${c.per.map(f0).join(' ')} us (pooled over all calls: ${f3(c.pooled)} ms)${Number.isFinite(c.nginx) ? `; nginx adds ${f3(c.nginx)} ms` : ''}`;
    }
    if (v !== 'PASS') anyFail = true;
    verdicts.push(`| added p50 of tools/call through aigw, ${mode} | ${measured} | < ${opt.thresholdMs} ms | ${v === 'n/a' ? v : `**${v}**`} |`);
  }
  const notesOut = [];
  for (const mode of opt.modes) {
    const R = results.modes[mode];
    if (!R?.rounds?.length) continue;
    notesOut.push(`- ${mode}, other work per round: machine busy before ${R.rounds.map((x) => `${f0(x.boxBusy)}%`).join(' ')}; during ${R.rounds.map((x) => `${f0(x.boxOthers)}%`).join(' ')}; on the proxies' CPU ${opt.sutCpus} during ${R.rounds.map((x) => (Number.isFinite(x.others) ? `${f0(x.others)}%` : 'n/a')).join(' ')} (from /proc/stat ticks, rough)`);
  }
  for (const [mode, c] of Object.entries(crit)) {
    if (!c.disturbed) continue;
    notesOut.push(c.disturbed * 2 > c.rounds
      ? `- **warning** (${mode}): other work kept the machine over 30% busy in ${c.disturbed} of ${c.rounds} rounds; the figures, the verdict included, are inflated by it (rerun with --wait-quiet S)`
      : `- ${mode}: ${c.disturbed} of ${c.rounds} rounds disturbed by other work (over 30% busy); the verdict's median over rounds discounts them, the pooled figures do not`);
  }
  notesOut.push(`- load average at start: ${env.loadavg}; measuring took ${f0(elapsed)} s`);
  for (const n of notes) notesOut.push(`- ${n}`);

  const cliArgs = process.argv.slice(2).join(' ');
  const makeCommand = `make bench-mcp${cliArgs ? ` BENCH_MCP_ARGS="${cliArgs}"` : ''}`;
  const summary = [
    `### MCP run of ${env.date.slice(0, 10)} (${env.date.slice(11, 16)} UTC)`, '', '```', makeCommand, '```', '',
    `- machine: ${env.machine}`, `- aigw: ${env.aigw} (tree at ${env.tree})`, `- backend: ${env.backend}`, `- nginx: ${env.nginx}`,
    `- pinning: ${env.pinning}`, `- load: ${env.load}`, '',
    'tools/call, sequential (c=1), interleaved call by call:', '', ...lines, '',
    'Session set-up (initialize + notifications/initialized; the proxy CPU includes the untimed DELETE that follows), interleaved:', '', ...sesLines, '',
    ...(opt.tputSeconds > 0 ? [`Throughput at ${opt.conns} concurrent calls (medians over rounds; client and backend share CPU ${opt.loadCpus}):`, '', ...tputLines, ''] : []),
    ...verdicts, '', ...notesOut,
  ].join('\n');
  fs.writeFileSync(path.join(OUT, 'summary.md'), `${summary}\n`);
  fs.writeFileSync(path.join(OUT, 'results.json'), `${JSON.stringify({ ...results, modes: Object.fromEntries(Object.entries(results.modes).map(([m, R]) => [m, { ...R, calls: undefined, sessions: Object.fromEntries(Object.entries(R.sessions).map(([k, v]) => [k, stats(v)])) }])) }, null, 2)}\n`);
  process.stdout.write(`\n==================== results (${OUT})\n${summary}\n====================\n`);
  for (const mode of opt.modes) {
    const c = crit[mode];
    if (c) {
      const busy = c.disturbed * 2 > c.rounds ? ` (${c.disturbed} of ${c.rounds} rounds disturbed by other work: not conclusive)` : '';
      process.stdout.write(`${c.added < opt.thresholdMs ? 'PASS' : 'FAIL'}: aigw added p50 (tools/call, ${mode}) ${f3(c.added)} ms ${c.added < opt.thresholdMs ? '<' : '>='} ${opt.thresholdMs} ms${busy}\n`);
    } else {
      process.stdout.write(`n/a: aigw added p50 (tools/call, ${mode}) not measured\n`);
    }
  }
  runLog.end();
  process.exit(opt.strict && anyFail ? 1 : 0);
}

main().catch(async (e) => {
  log(`failed: ${e && e.stack ? e.stack : e}`);
  await stopAll();
  process.exit(2);
});
