// A fake Anthropic Messages API upstream: FakeOpenAI's recording, queueing and streaming machinery
// with Anthropic default answers (/v1/messages JSON or SSE echo, /v1/messages/count_tokens), plus
// helpers that build Anthropic SSE (event: <type> / data: <json>) and error bodies such as a
// mid-stream `event: error` overloaded_error or a 529.
import { FakeOpenAI, splitSSE } from './fake_openai.mjs';

/** Anthropic SSE text of event objects (each has a "type"): event: <type>\ndata: <json>\n\n. */
export function anthropicSSE(events) {
  let s = '';
  for (const e of events) s += `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
  return s;
}

/** SSE text of a recorded chunks.jsonl (one Anthropic event payload per line). */
export function sseFromJsonl(buf) {
  const events = Buffer.from(buf).toString('utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  return anthropicSSE(events);
}

export function anthropicError(type, message) {
  return { type: 'error', error: { type, message } };
}

export function anthropicMessage({ text = 'Hello!', model = 'claude-e2e', id = 'msg_e2e_01', stopReason = 'end_turn', content = null,
  usage = { input_tokens: 11, output_tokens: 7 } } = {}) {
  return {
    id, type: 'message', role: 'assistant', model,
    content: content || [{ type: 'text', text }],
    stop_reason: stopReason, stop_sequence: null, usage,
  };
}

/** The events of a simple streamed text answer (split in pieces), with usage in message_start and message_delta. */
export function anthropicTextEvents({ pieces = ['Hel', 'lo', '!'], model = 'claude-e2e', id = 'msg_e2e_s1', input = 21, output = 9,
  cacheRead = 0, cacheCreation = 0, stopReason = 'end_turn' } = {}) {
  return [
    { type: 'message_start', message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null,
      usage: { input_tokens: input, cache_creation_input_tokens: cacheCreation, cache_read_input_tokens: cacheRead, output_tokens: 1 } } },
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    { type: 'ping' },
    ...pieces.map((t) => ({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } })),
    { type: 'content_block_stop', index: 0 },
    { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: output } },
    { type: 'message_stop' },
  ];
}

function lastUserText(body) {
  const msgs = body && Array.isArray(body.messages) ? body.messages : [];
  const last = msgs[msgs.length - 1];
  if (!last) return '';
  if (typeof last.content === 'string') return last.content;
  if (Array.isArray(last.content)) return last.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
  return '';
}

export function anthropicDefault(rec) {
  let body = null;
  try { body = JSON.parse(rec.body.toString('utf8')); } catch { body = null; }
  const p = rec.path.split('?')[0];
  const model = body && typeof body.model === 'string' ? body.model : 'unknown';
  if (p.endsWith('/messages/count_tokens')) return { body: { input_tokens: 42 } };
  if (p.endsWith('/messages')) {
    const text = `echo: ${lastUserText(body)}`;
    if (body && body.stream) return { contentType: 'text/event-stream', chunks: splitSSE(anthropicSSE(anthropicTextEvents({ pieces: [text], model }))) };
    return { body: anthropicMessage({ text, model }) };
  }
  return { status: 404, body: anthropicError('not_found_error', `fake: no route for ${rec.method} ${rec.path}`) };
}

export class FakeAnthropic extends FakeOpenAI {
  constructor(opts = {}) {
    super(opts);
    this.defaultResponder = anthropicDefault;
  }
}

export async function startFakeAnthropic(opts = {}) {
  const f = new FakeAnthropic(opts);
  await f.listen();
  return f;
}
