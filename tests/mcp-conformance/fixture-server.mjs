// aigw MCP conformance fixture: an MCP server over Streamable HTTP, written with
// @modelcontextprotocol/sdk, that provides every tool, prompt, resource, template,
// completion and server->client trigger the server scenarios of
// @modelcontextprotocol/conformance 0.1.16 and 0.2.0-alpha.12 (--requirements 2025-11-25) call.
//
//   node fixture-server.mjs [--port N] [--host 127.0.0.1] [--quiet]
//   (or PORT / HOST environment variables; prints "fixture listening on http://HOST:PORT/mcp")
//
// Design notes
// - One low-level SDK `Server` per session (an SDK Server connects to exactly one transport);
//   sessions live in a Map and are dropped when their transport closes (DELETE), so later
//   requests with that id get 404 (server-session-lifecycle).
// - Server->client requests (sampling, elicitation) and in-call notifications (logging,
//   progress) go through the handler's `extra.sendRequest` / `extra.sendNotification`, which
//   carry the related request id: the SDK then writes them on the tools/call POST stream.
//   They never go to the standalone GET stream, whose late opening by the client made the
//   upstream v0.1.16 fixture lose them (reference/mcp.md section 5.5).
// - An in-memory event store (ours) makes streams resumable, so test_reconnection can close
//   its POST stream mid-call and the result is replayed on GET with Last-Event-ID.
// - Host/Origin are checked against localhost names (dns-rebinding-protection): 403 otherwise.
// - Tool input schemas are plain JSON objects passed through unchanged (json-schema-2020-12).

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import zlib from 'node:zlib';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  isInitializeRequest,
} from '@modelcontextprotocol/sdk/types.js';

// ---------------------------------------------------------------- options
function option(name, envName, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  return process.env[envName] ?? fallback;
}
const HOST = option('host', 'HOST', '127.0.0.1');
const PORT = Number(option('port', 'PORT', '3915'));
const QUIET = process.argv.includes('--quiet');
const log = (...a) => { if (!QUIET) console.error('[fixture]', ...a); };

// ---------------------------------------------------------------- small media blobs (generated)
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
// 1x1 red pixel, 8-bit RGB.
function onePixelPng() {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(1, 0);
  ihdr.writeUInt32BE(1, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const raw = Buffer.from([0 /* filter none */, 0xff, 0x00, 0x00]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]).toString('base64');
}
// 10 ms of silence, 8 kHz mono 16-bit PCM WAV.
function shortWav() {
  const samples = 80;
  const dataLen = samples * 2;
  const b = Buffer.alloc(44 + dataLen);
  b.write('RIFF', 0, 'ascii');
  b.writeUInt32LE(36 + dataLen, 4);
  b.write('WAVE', 8, 'ascii');
  b.write('fmt ', 12, 'ascii');
  b.writeUInt32LE(16, 16); // PCM header size
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(1, 22); // mono
  b.writeUInt32LE(8000, 24); // sample rate
  b.writeUInt32LE(8000 * 2, 28); // byte rate
  b.writeUInt16LE(2, 32); // block align
  b.writeUInt16LE(16, 34); // bits per sample
  b.write('data', 36, 'ascii');
  b.writeUInt32LE(dataLen, 40);
  return b.toString('base64');
}
const PNG_B64 = onePixelPng();
const WAV_B64 = shortWav();

// ---------------------------------------------------------------- catalogue
const noArgs = { type: 'object', properties: {} };
const TOOLS = [
  { name: 'test_simple_text', description: 'Returns a fixed text content item', inputSchema: noArgs },
  { name: 'test_image_content', description: 'Returns a 1x1 PNG image content item', inputSchema: noArgs },
  { name: 'test_audio_content', description: 'Returns a short WAV audio content item', inputSchema: noArgs },
  { name: 'test_embedded_resource', description: 'Returns an embedded text resource', inputSchema: noArgs },
  { name: 'test_multiple_content_types', description: 'Returns text, image and resource content', inputSchema: noArgs },
  { name: 'test_tool_with_logging', description: 'Emits three info log notifications while running', inputSchema: noArgs },
  { name: 'test_tool_with_progress', description: 'Reports progress 0, 50, 100 of 100 when given a progress token', inputSchema: noArgs },
  { name: 'test_error_handling', description: 'Always returns a tool error (isError: true)', inputSchema: noArgs },
  {
    name: 'test_sampling',
    description: 'Asks the client to sample an LLM message (sampling/createMessage)',
    inputSchema: { type: 'object', properties: { prompt: { type: 'string', description: 'Prompt sent to the LLM' } }, required: ['prompt'] },
  },
  {
    name: 'test_elicitation',
    description: 'Asks the client for user input (elicitation/create: username, email)',
    inputSchema: { type: 'object', properties: { message: { type: 'string', description: 'Message shown to the user' } }, required: ['message'] },
  },
  { name: 'test_elicitation_sep1034_defaults', description: 'Elicitation whose schema has defaults for every primitive type (SEP-1034)', inputSchema: noArgs },
  { name: 'test_elicitation_sep1330_enums', description: 'Elicitation with the five enum schema variants (SEP-1330)', inputSchema: noArgs },
  { name: 'test_reconnection', description: 'Closes its SSE stream mid-call; the result is delivered after the client resumes (SEP-1699)', inputSchema: noArgs },
  {
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: {
        address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } },
      },
      properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
      additionalProperties: false,
    },
  },
];

const PROMPTS = [
  { name: 'test_simple_prompt', description: 'A prompt without arguments' },
  {
    name: 'test_prompt_with_arguments',
    description: 'A prompt with two required arguments',
    arguments: [
      { name: 'arg1', description: 'First test argument', required: true },
      { name: 'arg2', description: 'Second test argument', required: true },
    ],
  },
  {
    name: 'test_prompt_with_embedded_resource',
    description: 'A prompt embedding the resource named by resourceUri',
    arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
  },
  { name: 'test_prompt_with_image', description: 'A prompt with an image message' },
];

const RESOURCES = [
  { uri: 'test://static-text', name: 'static-text', description: 'A static text resource', mimeType: 'text/plain' },
  { uri: 'test://static-binary', name: 'static-binary', description: 'A static binary (PNG) resource', mimeType: 'image/png' },
  { uri: 'test://watched-resource', name: 'watched-resource', description: 'A resource clients may subscribe to', mimeType: 'text/plain' },
];
const TEMPLATES = [
  { uriTemplate: 'test://template/{id}/data', name: 'template-data', description: 'JSON data for an id', mimeType: 'application/json' },
];

const COMPLETIONS = {
  arg1: ['paris', 'park', 'party', 'test-value', 'testing'],
  arg2: ['world', 'wonder', 'work'],
};

const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const text = (t) => ({ type: 'text', text: t });

// ---------------------------------------------------------------- per-session MCP server
function buildServer(state) {
  const server = new Server(
    { name: 'aigw-conformance-fixture', version: '1.0.0' },
    {
      capabilities: {
        tools: { listChanged: false },
        prompts: { listChanged: false },
        resources: { subscribe: true, listChanged: false },
        logging: {},
        completions: {},
      },
      instructions: 'aigw conformance fixture server',
    },
  );

  server.setRequestHandler(SetLevelRequestSchema, async (req) => {
    state.logLevel = req.params.level;
    return {};
  });
  const logAllowed = (level) => LEVELS.indexOf(level) >= LEVELS.indexOf(state.logLevel);

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const args = req.params.arguments ?? {};
    switch (req.params.name) {
      case 'test_simple_text':
        return { content: [text('This is a simple text response for testing.')] };
      case 'test_image_content':
        return { content: [{ type: 'image', data: PNG_B64, mimeType: 'image/png' }] };
      case 'test_audio_content':
        return { content: [{ type: 'audio', data: WAV_B64, mimeType: 'audio/wav' }] };
      case 'test_embedded_resource':
        return {
          content: [{
            type: 'resource',
            resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' },
          }],
        };
      case 'test_multiple_content_types':
        return {
          content: [
            text('Multiple content types test:'),
            { type: 'image', data: PNG_B64, mimeType: 'image/png' },
            {
              type: 'resource',
              resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: JSON.stringify({ test: 'data', value: 123 }) },
            },
          ],
        };
      case 'test_tool_with_logging': {
        const steps = ['Tool execution started', 'Tool processing data', 'Tool execution completed'];
        for (let i = 0; i < steps.length; i++) {
          if (i > 0) await sleep(50);
          if (logAllowed('info')) {
            await extra.sendNotification({
              method: 'notifications/message',
              params: { level: 'info', logger: 'test_tool_with_logging', data: steps[i] },
            });
          }
        }
        return { content: [text('Tool with logging executed successfully')] };
      }
      case 'test_tool_with_progress': {
        const token = req.params._meta?.progressToken;
        for (const [i, p] of [0, 50, 100].entries()) {
          if (i > 0) await sleep(50);
          if (token !== undefined) {
            await extra.sendNotification({
              method: 'notifications/progress',
              params: { progressToken: token, progress: p, total: 100, message: `Completed step ${i + 1} of 3` },
            });
          }
        }
        return { content: [text(String(token ?? 'no progress token'))] };
      }
      case 'test_error_handling':
        return { isError: true, content: [text('This tool intentionally returns an error for testing')] };
      case 'test_sampling': {
        if (!server.getClientCapabilities()?.sampling) {
          return { isError: true, content: [text('Client does not support sampling')] };
        }
        const r = await extra.sendRequest(
          {
            method: 'sampling/createMessage',
            params: { messages: [{ role: 'user', content: text(String(args.prompt ?? '')) }], maxTokens: 100 },
          },
          CreateMessageResultSchema,
        );
        const answer = r.content?.type === 'text' ? r.content.text : JSON.stringify(r.content);
        return { content: [text(`LLM response: ${answer}`)] };
      }
      case 'test_elicitation':
        return elicit(server, extra, {
          message: String(args.message ?? ''),
          requestedSchema: {
            type: 'object',
            properties: {
              username: { type: 'string', description: "User's response" },
              email: { type: 'string', description: "User's email address" },
            },
            required: ['username', 'email'],
          },
        }, (r) => `User response: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
      case 'test_elicitation_sep1034_defaults':
        return elicit(server, extra, {
          message: 'Please review and update the form fields with defaults',
          requestedSchema: {
            type: 'object',
            properties: {
              name: { type: 'string', description: 'User name', default: 'John Doe' },
              age: { type: 'integer', description: 'User age', default: 30 },
              score: { type: 'number', description: 'User score', default: 95.5 },
              status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
              verified: { type: 'boolean', description: 'Verification status', default: true },
            },
            required: [],
          },
        }, (r) => `Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
      case 'test_elicitation_sep1330_enums':
        return elicit(server, extra, {
          message: 'Please choose from the enum fields',
          requestedSchema: {
            type: 'object',
            properties: {
              untitledSingle: { type: 'string', description: 'Untitled single-select', enum: ['option1', 'option2', 'option3'] },
              titledSingle: {
                type: 'string',
                description: 'Titled single-select',
                oneOf: [
                  { const: 'value1', title: 'First Option' },
                  { const: 'value2', title: 'Second Option' },
                  { const: 'value3', title: 'Third Option' },
                ],
              },
              legacyEnum: {
                type: 'string',
                description: 'Legacy titled enum',
                enum: ['opt1', 'opt2', 'opt3'],
                enumNames: ['Option One', 'Option Two', 'Option Three'],
              },
              untitledMulti: {
                type: 'array',
                description: 'Untitled multi-select',
                items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
              },
              titledMulti: {
                type: 'array',
                description: 'Titled multi-select',
                items: {
                  anyOf: [
                    { const: 'value1', title: 'First Choice' },
                    { const: 'value2', title: 'Second Choice' },
                    { const: 'value3', title: 'Third Choice' },
                  ],
                },
              },
            },
            required: [],
          },
        }, (r) => `Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
      case 'test_reconnection': {
        // Let the priming event (if any) reach the client, drop the POST stream, and
        // answer a little later: the SDK stores the result in our event store and replays
        // it when the client resumes with GET + Last-Event-ID.
        await sleep(100);
        extra.closeSSEStream?.();
        await sleep(200);
        return { content: [text('Reconnection test completed')] };
      }
      case 'json_schema_2020_12_tool':
        return { content: [text(`json_schema_2020_12_tool called with ${JSON.stringify(args)}`)] };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Tool ${req.params.name} not found`);
    }
  });

  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: PROMPTS }));
  server.setRequestHandler(GetPromptRequestSchema, async (req) => {
    const a = req.params.arguments ?? {};
    switch (req.params.name) {
      case 'test_simple_prompt':
        return { messages: [{ role: 'user', content: text('This is a simple prompt for testing.') }] };
      case 'test_prompt_with_arguments':
        return { messages: [{ role: 'user', content: text(`Prompt with arguments: arg1='${a.arg1 ?? ''}', arg2='${a.arg2 ?? ''}'`) }] };
      case 'test_prompt_with_embedded_resource':
        return {
          messages: [
            {
              role: 'user',
              content: {
                type: 'resource',
                resource: { uri: a.resourceUri ?? 'test://example-resource', mimeType: 'text/plain', text: 'Embedded resource content for testing.' },
              },
            },
            { role: 'user', content: text('Please process the embedded resource above.') },
          ],
        };
      case 'test_prompt_with_image':
        return {
          messages: [
            { role: 'user', content: { type: 'image', data: PNG_B64, mimeType: 'image/png' } },
            { role: 'user', content: text('Please analyze the image above.') },
          ],
        };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Prompt ${req.params.name} not found`);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: RESOURCES }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: TEMPLATES }));
  server.setRequestHandler(ReadResourceRequestSchema, async (req) => {
    const uri = req.params.uri;
    if (uri === 'test://static-text') {
      return { contents: [{ uri, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] };
    }
    if (uri === 'test://static-binary') {
      return { contents: [{ uri, mimeType: 'image/png', blob: PNG_B64 }] };
    }
    if (uri === 'test://watched-resource') {
      return { contents: [{ uri, mimeType: 'text/plain', text: 'Watched resource content.' }] };
    }
    const m = /^test:\/\/template\/([^/]+)\/data$/.exec(uri);
    if (m) {
      const id = decodeURIComponent(m[1]);
      return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }] };
    }
    // -32002 is the spec's "resource not found" code for 2025-11-25.
    throw new McpError(-32002, `Resource not found: ${uri}`, { uri });
  });
  server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    state.subscriptions.add(req.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    state.subscriptions.delete(req.params.uri);
    return {};
  });

  server.setRequestHandler(CompleteRequestSchema, async (req) => {
    const { ref, argument } = req.params;
    let pool = [];
    if (ref.type === 'ref/prompt' && ref.name === 'test_prompt_with_arguments') pool = COMPLETIONS[argument.name] ?? [];
    const values = pool.filter((v) => v.startsWith(argument.value ?? ''));
    return { completion: { values, total: values.length, hasMore: false } };
  });

  return server;
}

async function elicit(server, extra, params, describe) {
  if (!server.getClientCapabilities()?.elicitation) {
    return { isError: true, content: [text('Client does not support elicitation')] };
  }
  const r = await extra.sendRequest({ method: 'elicitation/create', params }, ElicitResultSchema);
  return { content: [text(describe(r))] };
}

// ---------------------------------------------------------------- resumability
class MemoryEventStore {
  constructor() {
    this.events = new Map(); // eventId -> {streamId, message}
    this.seq = 0;
  }
  async storeEvent(streamId, message) {
    const id = `${streamId}_${++this.seq}`;
    this.events.set(id, { streamId, message, seq: this.seq });
    if (this.events.size > 10000) this.events.delete(this.events.keys().next().value);
    return id;
  }
  async getStreamIdForEventId(eventId) {
    return this.events.get(eventId)?.streamId;
  }
  async replayEventsAfter(lastEventId, { send }) {
    const last = this.events.get(lastEventId);
    if (!last) return '';
    for (const [id, ev] of this.events) {
      if (ev.streamId === last.streamId && ev.seq > last.seq) await send(id, ev.message);
    }
    return last.streamId;
  }
}

// ---------------------------------------------------------------- HTTP front
const LOCAL_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);
function hostnameOf(hostHeader) {
  try {
    return new URL(`http://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return null;
  }
}
function localOk(req) {
  const host = req.headers.host;
  if (!host || !LOCAL_NAMES.has(hostnameOf(host))) return false;
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let h;
    try {
      h = new URL(origin).hostname.toLowerCase();
    } catch {
      return false;
    }
    if (!LOCAL_NAMES.has(h)) return false;
  }
  return true;
}
function jsonError(res, status, code, message, id = null) {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id }));
}
async function readJson(req, limit = 4 * 1024 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > limit) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(c);
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(raw);
  } catch {
    throw Object.assign(new Error('Parse error'), { status: 400, code: -32700 });
  }
}

const sessions = new Map(); // sessionId -> { transport, server }

async function handleMcp(req, res) {
  if (!localOk(req)) {
    return jsonError(res, 403, -32000, 'Forbidden: Host/Origin is not a localhost name');
  }
  const sid = req.headers['mcp-session-id'];
  if (req.method === 'POST') {
    let body;
    try {
      body = await readJson(req);
    } catch (e) {
      return jsonError(res, e.status ?? 400, e.code ?? -32600, e.message);
    }
    if (sid !== undefined) {
      const s = sessions.get(sid);
      if (!s) return jsonError(res, 404, -32001, 'Session not found');
      return s.transport.handleRequest(req, res, body);
    }
    if (!isInitializeRequest(body)) {
      return jsonError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    }
    const state = { logLevel: 'debug', subscriptions: new Set() };
    const server = buildServer(state);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new MemoryEventStore(),
      retryInterval: 500,
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server });
        log('session opened', id);
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
        log('session closed', id);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    return transport.handleRequest(req, res, body);
  }
  if (req.method === 'GET' || req.method === 'DELETE') {
    if (sid === undefined) return jsonError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    const s = sessions.get(sid);
    if (!s) return jsonError(res, 404, -32001, 'Session not found');
    await s.transport.handleRequest(req, res);
    if (req.method === 'DELETE') {
      sessions.delete(sid);
      s.server.close().catch(() => {});
    }
    return undefined;
  }
  res.writeHead(405, { Allow: 'GET, POST, DELETE', 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed' }, id: null }));
  return undefined;
}

const httpServer = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/health') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    return res.end('ok\n');
  }
  if (path !== '/mcp') {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    return res.end('not found\n');
  }
  handleMcp(req, res).catch((e) => {
    log('error', e?.stack ?? e);
    jsonError(res, 500, -32603, 'Internal error');
  });
  return undefined;
});
httpServer.listen(PORT, HOST, () => {
  const a = httpServer.address();
  console.log(`fixture listening on http://${HOST}:${a.port}/mcp`);
});

async function shutdown() {
  for (const [, s] of sessions) {
    await s.transport.close().catch(() => {});
  }
  httpServer.close();
  httpServer.closeAllConnections?.();
  setTimeout(() => process.exit(0), 500).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
