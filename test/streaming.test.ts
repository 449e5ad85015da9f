/**
 * Streamed answers (issue 16): a bot that yields text in pieces. Telegram and Slack show one message edited as it
 * grows, no faster than each platform's limit, ending with the whole text; socket.io clients get partial events and one
 * final `bot_uttered`; `rest?stream=true` gets partial lines as they are produced; SMS gets one message; a remote bot
 * server streaming NDJSON or server-sent events works end to end.
 */
import test from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpClient, Pipeline, SwitchboardServer, UserMessage, type Bot, type BotStreamItem } from 'switchboard';
import { RemoteBot } from '#src/bots/index.js';
import { startFakePlatform, type PlatformRequest } from 'switchboard/testing';
import { TelegramOutput } from '../channels/telegram/output.js';
import { SlackOutput } from '../channels/slack/output.js';
import { TwilioOutput } from '../channels/twilio/output.js';
import { DiscordOutput } from '../channels/discord/output.js';
import SocketIOInput from '../channels/socketio/index.js';
import RestInput from '../channels/rest/index.js';
import { connect, session } from './socketio-client.js';

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const WORDS = Array.from({ length: 20 }, (_, i) => `word${i} `);
const FULL = WORDS.join('');

/** A module bot streaming 20 pieces over about 2 s. */
const streamingBot = (gapMs = 100): Bot => ({
  async *handle(): AsyncGenerator<BotStreamItem> {
    for (const word of WORDS) {
      await wait(gapMs);
      yield word;
    }
  },
});

interface Timed extends PlatformRequest {
  at: number;
}

async function platform(t: import('ava').ExecutionContext, answer: (request: PlatformRequest) => { status?: number; body?: unknown } | undefined) {
  const calls: Timed[] = [];
  const fake = await startFakePlatform((request) => {
    calls.push({ ...request, at: Date.now() });
    return answer(request);
  });
  t.teardown(() => fake.close());
  return { url: fake.url, calls };
}

/** When each outgoing call started: the host spaces the edits it starts, whatever the network adds after. */
class TimedHttp extends HttpClient {
  readonly starts: number[] = [];
  override request<T = unknown>(...args: Parameters<HttpClient['request']>) {
    this.starts.push(Date.now());
    return super.request<T>(...args);
  }
}

const http = () => new TimedHttp({ minDelayMs: 5, maxDelayMs: 20, timeoutMs: 3_000 });

test('Telegram: one message, sendMessage then editMessageText at most once a second, ending with the whole text', async (t) => {
  const api = await platform(t, (request) => (request.path.endsWith('/sendMessage') ? { body: { ok: true, result: { message_id: 4711 } } } : undefined));
  const client = http();
  const output = new TelegramOutput(client, { apiUrl: api.url, accessToken: '123:ABC', typingIndicator: false, logger: undefined as never });
  const pipeline = new Pipeline({ bot: streamingBot() });
  const started = Date.now();
  const accepted = await pipeline.enqueue(new UserMessage({ text: 'tell me', senderId: '42', output, inputChannel: 'telegram' }));
  t.is(await accepted.done, 'handled');
  const tookMs = Date.now() - started;
  const methods = api.calls.map((call) => call.path.split('/').pop());
  t.is(methods[0], 'sendMessage');
  t.true(methods.slice(1).every((method) => method === 'editMessageText'), methods.join(' '));
  // 20 pieces: the first posted at once, then at most one edit a second while the bot streams, and the final edit.
  t.true(methods.length >= 2 && methods.length <= 2 + Math.ceil(tookMs / 1_000), `${methods.length} calls for 20 pieces over ${tookMs} ms`);
  t.deepEqual(JSON.parse(api.calls[0]!.body), { chat_id: '42', text: 'word0' });
  for (const call of api.calls.slice(1)) t.like(JSON.parse(call.body), { chat_id: '42', message_id: 4711 });
  t.is((JSON.parse(api.calls.at(-1)!.body) as { text: string }).text, FULL.trim(), 'the last edit is the whole text');
  // The updates start at least a second apart (the last call, the final edit, comes when the bot is done).
  const starts = client.starts;
  for (let i = 1; i < starts.length - 1; i++) t.true(starts[i]! - starts[i - 1]! >= 980, `no faster than the edit limit: ${starts[i]! - starts[i - 1]!} ms`);
});

test('Slack: chat.postMessage then chat.update of that ts, at most every 1.2 s, ending with the whole text', async (t) => {
  const api = await platform(t, (request) => (request.path.endsWith('/chat.postMessage') ? { body: { ok: true, channel: 'C024BE91L', ts: '1503435956.000247' } } : { body: { ok: true } }));
  const client = http();
  const output = new SlackOutput(client, { token: 'xoxb-test', apiUrl: api.url, channel: undefined, threadTs: undefined });
  const pipeline = new Pipeline({ bot: streamingBot() });
  const started = Date.now();
  t.is(await (await pipeline.enqueue(new UserMessage({ text: 'tell me', senderId: 'C024BE91L', output, inputChannel: 'slack' }))).done, 'handled');
  const tookMs = Date.now() - started;
  const paths = api.calls.map((call) => call.path);
  t.deepEqual(paths[0], '/chat.postMessage');
  t.true(paths.slice(1).every((path) => path === '/chat.update') && paths.length >= 2 && paths.length <= 2 + Math.ceil(tookMs / 1_200), `${paths.join(' ')} over ${tookMs} ms`);
  t.deepEqual(JSON.parse(api.calls[0]!.body), { channel: 'C024BE91L', text: 'word0' });
  t.is(api.calls[1]!.headers.authorization, 'Bearer xoxb-test');
  t.deepEqual(JSON.parse(api.calls.at(-1)!.body), { channel: 'C024BE91L', ts: '1503435956.000247', text: FULL.trim() });
  const starts = client.starts;
  for (let i = 1; i < starts.length - 1; i++) t.true(starts[i]! - starts[i - 1]! >= 1_180, `no faster than the edit limit: ${starts[i]! - starts[i - 1]!} ms`);
});

test('Discord: a follow-up message, then PATCH of that message at most once a second, ending with the whole text', async (t) => {
  // Create Followup Message answers the message object.
  const api = await platform(t, (request) => (request.method === 'POST' ? { body: { id: '1176946473014419517', type: 0, content: 'word0', channel_id: '645027906669510667' } } : { body: { id: '1176946473014419517' } }));
  const client = http();
  const webhookUrl = `${api.url}/v10/webhooks/290926444748734465/aW50ZXJhY3Rpb246OkRJU0NPUkRfVE9LRU4`;
  const output = new DiscordOutput(client, { webhookUrl, logger: undefined as never });
  const pipeline = new Pipeline({ bot: streamingBot() });
  const started = Date.now();
  t.is(await (await pipeline.enqueue(new UserMessage({ text: 'tell me', senderId: '53908232506183680', output, inputChannel: 'discord' }))).done, 'handled');
  const tookMs = Date.now() - started;
  const calls = api.calls.map((call) => `${call.method} ${call.path}`);
  t.is(calls[0], 'POST /v10/webhooks/290926444748734465/aW50ZXJhY3Rpb246OkRJU0NPUkRfVE9LRU4');
  t.true(calls.slice(1).every((call) => call === 'PATCH /v10/webhooks/290926444748734465/aW50ZXJhY3Rpb246OkRJU0NPUkRfVE9LRU4/messages/1176946473014419517'), calls.join(' '));
  t.true(calls.length >= 2 && calls.length <= 2 + Math.ceil(tookMs / 1_000), `${calls.length} calls over ${tookMs} ms`);
  t.deepEqual(JSON.parse(api.calls[0]!.body), { content: 'word0', allowed_mentions: { parse: [] } });
  t.deepEqual(JSON.parse(api.calls.at(-1)!.body), { content: FULL.trim(), embeds: [], components: [], allowed_mentions: { parse: [] } });
  const starts = client.starts;
  for (let i = 1; i < starts.length - 1; i++) t.true(starts[i]! - starts[i - 1]! >= 980, `no faster than the edit pace: ${starts[i]! - starts[i - 1]!} ms`);
});

test('SMS (Twilio): a streamed answer is sent once, whole', async (t) => {
  const api = await platform(t, () => ({ status: 201, body: { sid: 'SM1' } }));
  const output = new TwilioOutput(http(), { apiUrl: api.url, accountSid: 'AC123', authToken: 'secret', twilioNumber: '+14155551234' });
  const pipeline = new Pipeline({ bot: streamingBot(10) });
  t.is(await (await pipeline.enqueue(new UserMessage({ text: 'tell me', senderId: '+14155550000', output, inputChannel: 'twilio' }))).done, 'handled');
  t.is(api.calls.length, 1);
  t.is(new URLSearchParams(api.calls[0]!.body).get('Body'), FULL.trim());
});

test('an answer object ends the streamed text: text pieces, then buttons, each sent in order', async (t) => {
  const api = await platform(t, () => ({ status: 201, body: { sid: 'SM1' } }));
  const output = new TwilioOutput(http(), { apiUrl: api.url, accountSid: 'AC123', authToken: 'secret', twilioNumber: '+14155551234' });
  const bot: Bot = {
    async *handle() {
      yield 'Hello ';
      yield 'there.';
      yield { text: 'Pick one', buttons: [{ title: 'yes', payload: '/yes' }] };
      yield 'And ';
      yield 'more.';
    },
  };
  const pipeline = new Pipeline({ bot });
  await (await pipeline.enqueue(new UserMessage({ text: 'hi', senderId: '+14155550000', output, inputChannel: 'twilio' }))).done;
  t.deepEqual(api.calls.map((call) => new URLSearchParams(call.body).get('Body')), ['Hello there.', 'Pick one\n1: yes (/yes)', 'And more.']);
});

test('socket.io: bot_uttered_partial events {id, text} while the answer grows, then one bot_uttered with the whole text', async (t) => {
  const channel = SocketIOInput.fromCredentials({ session_persistence: true, user_message_evt: 'user_uttered', bot_message_evt: 'bot_uttered' });
  const server = new SwitchboardServer({ channels: [channel], bot: streamingBot(20) });
  t.teardown(() => server.close(200));
  const { port } = await server.listen(0, '127.0.0.1');
  const socket = await connect(t, { url: `http://127.0.0.1:${port}` });
  const id = await session(socket);
  const partials: Array<{ id: string; text: string }> = [];
  const finals: unknown[] = [];
  socket.on('bot_uttered_partial', (event: { id: string; text: string }) => partials.push(event));
  socket.on('bot_uttered', (event: unknown) => finals.push(event));
  socket.emit('user_uttered', { message: 'tell me', session_id: id });
  const deadline = Date.now() + 5_000;
  while (finals.length === 0 && Date.now() < deadline) await wait(20);
  await wait(100);
  t.deepEqual(finals, [{ text: FULL.trim() }]);
  t.true(partials.length >= 2, `${partials.length} partial events`);
  t.true(partials.every((event) => event.id === partials[0]!.id && FULL.startsWith(event.text)), 'each partial is the text so far, one id');
  for (let i = 1; i < partials.length; i++) t.true(partials[i]!.text.length > partials[i - 1]!.text.length, 'growing');
});

async function restHost(t: import('ava').ExecutionContext, bot: Bot): Promise<string> {
  const server = new SwitchboardServer({ channels: [RestInput.fromCredentials({})], bot });
  t.teardown(() => server.close(200));
  const { port } = await server.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${port}/webhooks/rest/webhook`;
}

/** Reads a `?stream=true` answer line by line, noting when each line arrived. */
async function readLines(url: string): Promise<Array<{ at: number; line: Record<string, unknown> }>> {
  const response = await fetch(`${url}?stream=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sender: 'ann', message: 'tell me' }) });
  const lines: Array<{ at: number; line: Record<string, unknown> }> = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      lines.push({ at: Date.now(), line: JSON.parse(buffer.slice(0, newline)) as Record<string, unknown> });
      buffer = buffer.slice(newline + 1);
    }
  }
  return lines;
}

test('rest?stream=true: partial lines as the text grows, written before the bot finishes, then the whole answer', async (t) => {
  let finished = 0;
  const bot: Bot = {
    async *handle() {
      for (const word of WORDS.slice(0, 5)) {
        await wait(100);
        yield word;
      }
      finished = Date.now();
    },
  };
  const lines = await readLines(await restHost(t, bot));
  t.true(lines.length >= 3, `${lines.length} lines`);
  t.true(lines[0]!.at < finished, 'the first line arrives before the bot finishes');
  t.deepEqual(lines[0]!.line, { recipient_id: 'ann', text: 'word0 ', partial: true });
  t.true(lines.slice(0, -1).every((entry) => entry.line.partial === true));
  t.deepEqual(lines.at(-1)!.line, { recipient_id: 'ann', text: 'word0 word1 word2 word3 word4' });
});

test('rest without ?stream: the streamed text is collected into one answer', async (t) => {
  const url = await restHost(t, streamingBot(5));
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sender: 'ann', message: 'tell me' }) });
  t.deepEqual(await response.json(), [{ recipient_id: 'ann', text: FULL.trim() }]);
});

/** A bot server that answers with `contentType` and writes `parts` with a pause between them. */
async function streamingServer(t: import('ava').ExecutionContext, contentType: string, parts: string[]): Promise<string> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', async () => {
      res.writeHead(200, { 'content-type': contentType });
      for (const part of parts) {
        res.write(part);
        await wait(30);
      }
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/rest/webhook`;
}

for (const [kind, contentType, parts] of [
  ['NDJSON', 'application/x-ndjson', ['{"chunk": "Hel"}\n{"chu', 'nk": "lo, "}\n', '{"chunk": "world."}\n', '{"recipient_id": "ann", "text": "Pick", "buttons": [{"title": "a", "payload": "/a"}]}\n']],
  ['server-sent events', 'text/event-stream; charset=utf-8', [': hello\n\n', 'data: {"chunk": "Hel"}\n\n', 'event: message\ndata: {"chunk": "lo, "}\n\ndata: {"chunk":', ' "world."}\n\n', 'data: {"text": "Pick", "buttons": [{"title": "a", "payload": "/a"}]}\n\n', 'data: [DONE]\n\n']],
] as const) {
  test(`a remote bot server streaming ${kind}: pieces become one streamed text, then the complete answer`, async (t) => {
    const bot = new RemoteBot({ url: await streamingServer(t, contentType, [...parts]), http: http() });
    const lines = await readLines(await restHost(t, bot));
    const partial = lines.filter((entry) => entry.line.partial === true).map((entry) => entry.line.text);
    t.true(partial.length >= 1 && partial.every((text) => 'Hello, world.'.startsWith(String(text))), partial.join(' | '));
    t.deepEqual(lines.filter((entry) => entry.line.partial !== true).map((entry) => entry.line), [
      { recipient_id: 'ann', text: 'Hello, world.' },
      { recipient_id: 'ann', text: 'Pick', buttons: [{ title: 'a', payload: '/a' }] },
    ]);
  });
}

test('a remote bot server answering a plain JSON array works as before', async (t) => {
  const bot = new RemoteBot({ url: await streamingServer(t, 'application/json', ['[{"recipient_id": "ann", "text": "hi"}]']), http: http() });
  const url = await restHost(t, bot);
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sender: 'ann', message: 'x' }) });
  t.deepEqual(await response.json(), [{ recipient_id: 'ann', text: 'hi' }]);
});

test('the typing indicator runs until the first piece, not until the stream ends', async (t) => {
  const api = await platform(t, (request) => (request.path.endsWith('/sendMessage') ? { body: { ok: true, result: { message_id: 1 } } } : undefined));
  const output = new TelegramOutput(http(), { apiUrl: api.url, accessToken: '123:ABC', typingIndicator: true, logger: undefined as never });
  const bot: Bot = {
    async *handle() {
      await wait(700);
      yield 'first ';
      await wait(1_500);
      yield 'second';
    },
  };
  const pipeline = new Pipeline({ bot, typingDelayMs: 100, typingIntervalMs: 200 });
  await (await pipeline.enqueue(new UserMessage({ text: 'hi', senderId: '42', output, inputChannel: 'telegram' }))).done;
  const first = api.calls.findIndex((call) => call.path.endsWith('/sendMessage'));
  const typing = api.calls.map((call, index) => ({ index, typing: call.path.endsWith('/sendChatAction') })).filter((c) => c.typing);
  t.true(typing.length >= 2, 'typing shown while the bot thinks');
  t.true(typing.every((c) => c.index < first), 'no typing after the first piece is shown');
});
