// `POST /webhooks/rest/webhook?stream=true`: Rasa's streamed framing (its console reads it), read by a real HTTP
// client as the bytes arrive.
import test, { type ExecutionContext } from 'ava';
import type { BotMessage, UserMessage } from 'switchboard';
import RestInput from '../../channels/rest/index.js';
import { ScriptedBot, startServer } from '../harness.js';

/** A bot that yields its answers one at a time; each waits for the test to release it. */
class SteppedBot {
  readonly received: UserMessage[] = [];
  /** How many answers the bot has produced so far. */
  produced = 0;
  finished = false;
  private releases: Array<() => void> = [];
  private gates: Array<Promise<void>> = [];

  constructor(
    private readonly answers: BotMessage[],
    /** Before which answers (by index) the bot waits for `release()`. */
    gatedAt: number[],
    private readonly failAt?: number,
  ) {
    for (let i = 0; i < answers.length; i++) {
      this.gates.push(gatedAt.includes(i) ? new Promise<void>((resolve) => this.releases.push(resolve)) : Promise.resolve());
    }
  }

  release(): void {
    this.releases.shift()?.();
  }

  async *handle(message: UserMessage): AsyncGenerator<BotMessage> {
    this.received.push(message);
    for (let i = 0; i < this.answers.length; i++) {
      await this.gates[i];
      if (i === this.failAt) throw new Error('bot exploded: secret-internal-detail');
      this.produced += 1;
      yield this.answers[i]!;
    }
    this.finished = true;
  }
}

/** Reads a streamed response line by line, as it arrives. */
class LineReader {
  private buffer = '';
  private readonly decoder = new TextDecoder();
  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  /** The next line without its `\n`, or undefined at the end of the stream. */
  async next(timeoutMs = 3_000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const newline = this.buffer.indexOf('\n');
      if (newline >= 0) {
        const line = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        return line;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${timeoutMs} ms (buffered: ${JSON.stringify(this.buffer)})`);
      let timer: NodeJS.Timeout | undefined;
      const chunk = await Promise.race([
        this.reader.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no line within ${timeoutMs} ms`)), left);
        }),
      ]).finally(() => clearTimeout(timer));
      if (chunk.done) {
        if (this.buffer !== '') throw new Error(`stream ended inside a line: ${JSON.stringify(this.buffer)}`);
        return undefined;
      }
      this.buffer += this.decoder.decode(chunk.value, { stream: true });
    }
  }
}

async function streamServer(t: ExecutionContext, bot: object) {
  return startServer(t, [RestInput.fromCredentials({})], { bot: bot as ScriptedBot });
}

function post(url: string, query: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(`${url}/webhooks/rest/webhook${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
}

const ANSWERS: BotMessage[] = [
  { text: 'Hey! How are you?', buttons: [{ title: 'great', payload: '/mood_great' }] },
  { text: 'one\n\ntwo' },
  { image: 'https://i.imgur.com/nGF1K8f.jpg' },
];

test('rest ?stream=true: each answer is written as a bare JSON line as soon as the bot produces it', async (t) => {
  const bot = new SteppedBot(ANSWERS, [1]);
  const { url } = await streamServer(t, bot);
  const response = await post(url, '?stream=true', { sender: 'alice', message: 'hello' });
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'text/event-stream');
  const lines = new LineReader(response.body!.getReader());

  const first = await lines.next();
  // The first line arrived while the second answer did not exist yet.
  t.is(bot.produced, 1);
  t.deepEqual(JSON.parse(first!), { recipient_id: 'alice', ...ANSWERS[0] });

  bot.release();
  const rest: string[] = [];
  for (let line = await lines.next(); line !== undefined; line = await lines.next()) rest.push(line);
  // No `data:` prefix: each line is exactly the object the JSON array would hold.
  t.deepEqual(rest, [
    '{"recipient_id":"alice","text":"one"}',
    '{"recipient_id":"alice","text":"two"}',
    '{"recipient_id":"alice","image":"https://i.imgur.com/nGF1K8f.jpg"}',
  ]);
  t.true(bot.finished);
});

test('rest: the streamed lines are the same objects as the JSON array, and a bot that yields works without ?stream', async (t) => {
  const { url } = await streamServer(t, new SteppedBot(ANSWERS, []));
  const streamed = await (await post(url, '?stream=true', { sender: 7000100004, message: 'hi' })).text();
  const plain = await post(url, '', { sender: 7000100004, message: 'hi' });
  t.regex(plain.headers.get('content-type') ?? '', /^application\/json/);
  const array = (await plain.json()) as unknown[];
  t.is(array.length, 4);
  t.deepEqual(streamed.split('\n'), [...array.map((answer) => JSON.stringify(answer)), '']);
  t.is((array[0] as { recipient_id: string }).recipient_id, '7000100004');
});

test('rest: ?stream=TRUE streams (the value is lower-cased); false, 1 or a second value do not', async (t) => {
  const { url } = await startServer(t, [RestInput.fromCredentials({})], { bot: new ScriptedBot([{ text: 'ok' }]) });
  for (const query of ['?stream=TRUE', '?stream=True', '?stream=true&stream=false']) {
    const response = await post(url, query, { sender: 'a', message: 'hi' });
    t.is(response.headers.get('content-type'), 'text/event-stream', query);
    t.is(await response.text(), '{"recipient_id":"a","text":"ok"}\n', query);
  }
  for (const query of ['?stream=false', '?stream=1', '?stream=', '?stream=false&stream=true', '?streaming=true']) {
    const response = await post(url, query, { sender: 'a', message: 'hi' });
    t.regex(response.headers.get('content-type') ?? '', /^application\/json/, query);
    t.deepEqual(await response.json(), [{ recipient_id: 'a', text: 'ok' }], query);
  }
});

test('rest ?stream=true: a bad request is still a JSON 400 before anything is streamed', async (t) => {
  const { url, bot } = await startServer(t, [RestInput.fromCredentials({})]);
  const response = await post(url, '?stream=true', { sender: true, message: 'hi' });
  t.is(response.status, 400);
  t.deepEqual(await response.json(), { error: '"sender" must be a non-empty string or a whole number' });
  t.is(bot.received.length, 0);
});

test('rest ?stream=true: a client that disconnects mid-stream crashes nothing; the bot finishes, the server serves on', async (t) => {
  const bot = new SteppedBot([...ANSWERS, { text: 'last' }], [1, 3]);
  const { url, logs } = await streamServer(t, bot);
  const abort = new AbortController();
  const response = await post(url, '?stream=true', { sender: 'bob', message: 'hello' }, abort.signal);
  const lines = new LineReader(response.body!.getReader());
  t.deepEqual(JSON.parse((await lines.next())!), { recipient_id: 'bob', ...ANSWERS[0] });
  abort.abort();
  // Give the server time to see the connection close before the bot produces more.
  await new Promise((resolve) => setTimeout(resolve, 100));
  bot.release();
  await new Promise((resolve) => setTimeout(resolve, 50));
  bot.release();
  const deadline = Date.now() + 3_000;
  while (!bot.finished && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.true(bot.finished, 'the bot ran to the end');
  t.notRegex(logs.text, /"level":(50|60)/, 'nothing logged as an error');
  t.regex(logs.text, /stream client disconnected; answers dropped/);

  // The same sender's next message is not stuck behind the abandoned one.
  const next = await post(url, '', { sender: 'bob', message: 'again' });
  t.is(next.status, 200);
  t.is(bot.received.length, 2);
});

test('rest ?stream=true: a bot that fails part-way ends the stream after the answers it gave, no stack trace', async (t) => {
  const bot = new SteppedBot(ANSWERS, [], 2);
  const { url, logs } = await streamServer(t, bot);
  const response = await post(url, '?stream=true', { sender: 'c', message: 'hello' });
  t.is(response.status, 200);
  const text = await response.text();
  t.deepEqual(text.split('\n'), ['{"recipient_id":"c","text":"Hey! How are you?","buttons":[{"title":"great","payload":"/mood_great"}]}', '{"recipient_id":"c","text":"one"}', '{"recipient_id":"c","text":"two"}', '']);
  t.false(text.includes('secret-internal-detail'));
  t.regex(logs.text, /bot failed to handle the message/);
});
