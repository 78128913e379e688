// bench/mcp_backend.mjs - the MCP server behind the MCP benchmark (bench/mcp_bench.mjs): a typical
// stateful server written with the official SDK (McpServer + StreamableHTTPServerTransport, one
// transport per session id) with one trivial tool, `echo`. POST /mcp answers JSON, /mcp-sse SSE.
//
// Usage: node bench/mcp_backend.mjs [--port N] [--stdin-lifeline]   (127.0.0.1 only; prints "listening PORT" when ready)
// The SDK comes from tests/e2e/node_modules (`make deps`), so the bench adds no npm tree of its own.
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const requireE2e = createRequire(path.join(ROOT, 'tests', 'e2e', 'package.json'));
const { McpServer } = requireE2e('@modelcontextprotocol/sdk/server/mcp.js');
const { StreamableHTTPServerTransport } = requireE2e('@modelcontextprotocol/sdk/server/streamableHttp.js');
const { isInitializeRequest } = requireE2e('@modelcontextprotocol/sdk/types.js');
const { z } = requireE2e('zod');

const portArg = process.argv.indexOf('--port');
const PORT = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;
// Bounded so a client that never DELETEs its sessions cannot grow the process without end.
const MAX_SESSIONS = 10_000;
const MAX_BODY = 1 << 20;

function benchServer() {
  const s = new McpServer({ name: 'bench', version: '1.0.0' });
  s.registerTool('echo', { description: 'returns its text', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }));
  return s;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > MAX_BODY) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function jsonError(res, status, message) {
  res.writeHead(status, { 'content-type': 'application/json' })
    .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

// One session table per endpoint: a JSON session must not be served by an SSE transport.
const endpoints = { '/mcp': { json: true, sessions: new Map() }, '/mcp-sse': { json: false, sessions: new Map() } };

const srv = http.createServer(async (req, res) => {
  try {
    const ep = endpoints[req.url];
    if (!ep) { jsonError(res, 404, 'unknown path'); return; }
    let body;
    if (req.method === 'POST') {
      try { body = JSON.parse(await readBody(req)); } catch { jsonError(res, 400, 'parse error'); return; }
    }
    const sid = req.headers['mcp-session-id'];
    if (sid && ep.sessions.has(sid)) {
      await ep.sessions.get(sid).handleRequest(req, res, body);
      return;
    }
    if (!sid && req.method === 'POST' && isInitializeRequest(body)) {
      if (ep.sessions.size >= MAX_SESSIONS) { jsonError(res, 503, 'too many sessions'); return; }
      const t = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: ep.json,
        onsessioninitialized: (id) => ep.sessions.set(id, t),
      });
      t.onclose = () => { if (t.sessionId) ep.sessions.delete(t.sessionId); };
      await benchServer().connect(t);
      await t.handleRequest(req, res, body);
      return;
    }
    jsonError(res, sid ? 404 : 400, sid ? 'Session not found' : 'missing session id');
  } catch (e) {
    if (!res.headersSent) jsonError(res, 500, String(e && e.message));
    else res.destroy();
  }
});
srv.keepAliveTimeout = 120_000;
srv.listen(PORT, '127.0.0.1', () => process.stdout.write(`listening ${srv.address().port}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
// With --stdin-lifeline the benchmark keeps our stdin open: when it goes away (even killed with
// SIGKILL), so do we.
if (process.argv.includes('--stdin-lifeline')) process.stdin.on('end', () => process.exit(0)).resume();
