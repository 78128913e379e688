// A fake Bedrock runtime: records every request (FakeOpenAI machinery), verifies its SigV4
// Authorization against the credentials the test knows (rec.sigv4 = { ok, reasons, keyId, ... }),
// and answers Converse / ConverseStream / InvokeModel / InvokeModelWithResponseStream with queued
// specs or defaults: JSON, binary event-streams (recorded bytes or frames built here) and
// exception frames mid-stream.
import { FakeOpenAI } from './fake_openai.mjs';
import { verifySigV4 } from './sigv4.mjs';
import { converseEventFrame, exceptionFrame, invokeChunkFrame, recut } from './aws_eventstream.mjs';
import { anthropicMessage, anthropicTextEvents } from './fake_anthropic.mjs';

export const EVENTSTREAM = 'application/vnd.amazon.eventstream';

/** The model id of a Bedrock path /model/<escaped>/<action>, decoded, and the action. */
export function parseModelPath(rawPath) {
  const m = /^\/model\/([^/]+)\/([a-z-]+)$/.exec(rawPath.split('?')[0]);
  if (!m) return null;
  return { model: decodeURIComponent(m[1]), rawModel: m[1], action: m[2] };
}

export function converseResponse({ text = 'Hello from Bedrock', stopReason = 'end_turn', input = 12, output = 5, cacheRead = undefined, cacheWrite = undefined, content = null } = {}) {
  const usage = { inputTokens: input, outputTokens: output, totalTokens: input + output };
  if (cacheRead !== undefined) usage.cacheReadInputTokens = cacheRead;
  if (cacheWrite !== undefined) usage.cacheWriteInputTokens = cacheWrite;
  return {
    output: { message: { role: 'assistant', content: content || [{ text }] } },
    stopReason, usage, metrics: { latencyMs: 123 },
  };
}

/** Converse stream events of a plain text answer. */
export function converseTextEvents({ pieces = ['Hello', ' from', ' Bedrock'], stopReason = 'end_turn', input = 12, output = 5, cacheRead = undefined } = {}) {
  const usage = { inputTokens: input, outputTokens: output, totalTokens: input + output };
  if (cacheRead !== undefined) usage.cacheReadInputTokens = cacheRead;
  return [
    { messageStart: { role: 'assistant' } },
    ...pieces.map((t) => ({ contentBlockDelta: { contentBlockIndex: 0, delta: { text: t } } })),
    { contentBlockStop: { contentBlockIndex: 0 } },
    { messageStop: { stopReason } },
    { metadata: { usage, metrics: { latencyMs: 99 } } },
  ];
}

/** A spec streaming Converse events as event-stream frames; exceptionAfter: n frames, then an exception frame. */
export function converseStreamSpec(events, { exceptionAfter = null, exception = ['throttlingException', 'Too many requests, please wait before trying again.'], delayMs = 0, cut = false } = {}) {
  let frames = events.map(converseEventFrame);
  if (exceptionAfter !== null) frames = [...frames.slice(0, exceptionAfter), exceptionFrame(exception[0], exception[1])];
  const chunks = cut ? recut(Buffer.concat(frames)) : frames;
  return { contentType: EVENTSTREAM, chunks, delayMs, headers: { 'x-amzn-requestid': 'e2e-req-1' } };
}

/** A spec replaying recorded event-stream bytes (re-cut so frames straddle chunk boundaries). */
export function eventstreamBytesSpec(bytes, { cut = true } = {}) {
  return { contentType: EVENTSTREAM, chunks: cut ? recut(bytes) : [Buffer.from(bytes)] };
}

/** A spec streaming Anthropic events wrapped as InvokeModelWithResponseStream chunk frames. */
export function invokeStreamSpec(anthropicEvents, { exceptionAfter = null, exception = ['throttlingException', 'Too many tokens, please wait before trying again.'] } = {}) {
  let frames = anthropicEvents.map(invokeChunkFrame);
  if (exceptionAfter !== null) frames = [...frames.slice(0, exceptionAfter), exceptionFrame(exception[0], exception[1])];
  return { contentType: EVENTSTREAM, chunks: frames };
}

/** A Bedrock error reply: x-amzn-errortype header and a {message} body. */
export function bedrockErrorSpec(status, type, message) {
  return { status, headers: { 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`, 'x-amzn-requestid': 'e2e-err-1' }, body: { message } };
}

function bedrockDefault(rec) {
  const mp = parseModelPath(rec.path);
  if (!mp) return bedrockErrorSpec(404, 'UnknownOperationException', `fake bedrock: no route for ${rec.path}`);
  switch (mp.action) {
    case 'converse': return { body: converseResponse() };
    case 'converse-stream': return converseStreamSpec(converseTextEvents());
    case 'invoke': return { body: anthropicMessage({ text: 'Hello from Claude on Bedrock', model: 'claude-bedrock', id: 'msg_bdrk_e2e' }) };
    case 'invoke-with-response-stream':
    case 'invoke-stream': return invokeStreamSpec(anthropicTextEvents({ model: 'claude-bedrock', id: 'msg_bdrk_e2e_s' }));
    default: return bedrockErrorSpec(404, 'UnknownOperationException', `fake bedrock: unknown action ${mp.action}`);
  }
}

export class FakeBedrock extends FakeOpenAI {
  /** creds: { [accessKeyId]: { secret, token? } } the fake accepts; region: the expected scope region. */
  constructor({ creds = {}, region = 'us-east-1', service = 'bedrock', ...opts } = {}) {
    super(opts);
    this.creds = creds;
    this.region = region;
    this.service = service;
    this.defaultResponder = bedrockDefault;
    this.inspect = (rec) => {
      rec.sigv4 = verifySigV4(rec, this.creds, { region: this.region, service: this.service });
      rec.model = parseModelPath(rec.path);
      try { rec.json = JSON.parse(rec.body.toString('utf8')); } catch { rec.json = null; }
    };
  }

  /** Requests whose signature did not verify, as "path: reasons" strings. */
  signatureFailures() {
    return this.requests.filter((r) => r.bodyComplete && !(r.sigv4 && r.sigv4.ok)).map((r) => `${r.path}: ${r.sigv4 ? r.sigv4.reasons.join('; ') : r.inspectError}`);
  }
}

export async function startFakeBedrock(opts = {}) {
  const f = new FakeBedrock(opts);
  await f.listen();
  return f;
}
