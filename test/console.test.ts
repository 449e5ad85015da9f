import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { CredentialsError, type BotMessage, type UserMessage } from 'switchboard';
import ConsoleInput, { GREETING } from '../channels/console/index.js';
import { PACKAGE_ROOT } from './fixtures.js';
import { ScriptedBot, startServer, type TestServer } from './harness.js';

const RUN = path.join(PACKAGE_ROOT, 'dist', 'run.js');

const moodButtons = [
  { title: 'great', payload: '/mood_great' },
  { title: 'sad', payload: '/mood_unhappy' },
];

/** A small bot: greets with buttons, acknowledges payloads, echoes the rest. */
function moodAnswers(message: UserMessage): BotMessage[] {
  if (message.text === 'hello') return [{ text: 'Hey! How are you?', buttons: moodButtons }];
  if (message.text === '/mood_great') return [{ text: 'Great, carry on!' }];
  if (message.text.startsWith('/')) return [{ text: `command ${message.text}` }];
  return [{ text: `you said: ${message.text}` }];
}

interface Console {
  channel: ConsoleInput;
  host: TestServer;
  bot: ScriptedBot;
  input: PassThrough;
  /** Everything written so far. */
  output(): string;
  /** Resolves when the channel asks the host to shut down; with the output written by then. */
  shutdown: Promise<string>;
  /** Writes the lines, ends the input and waits for the shutdown request. */
  play(text: string): Promise<string>;
}

async function startConsole(
  t: ExecutionContext,
  answers: ConstructorParameters<typeof ScriptedBot>[0],
  credentials: Record<string, unknown> = {},
  terminal = false,
): Promise<Console> {
  const input = new PassThrough();
  const out = new PassThrough();
  let written = '';
  out.on('data', (chunk: Buffer) => (written += chunk.toString('utf8')));
  const channel = ConsoleInput.fromCredentials(credentials);
  channel.streams = { input, output: out, terminal };
  const bot = new ScriptedBot(answers);
  const host = await startServer(t, [channel], { bot });
  let requested: (text: string) => void = () => undefined;
  const shutdown = new Promise<string>((resolve) => (requested = resolve));
  host.server.onShutdownRequest = () => requested(written);
  t.teardown(() => channel.close());
  return {
    channel,
    host,
    bot,
    input,
    output: () => written,
    shutdown,
    async play(text) {
      input.end(text);
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no shutdown request; output so far:\n${written}`)), 5_000).unref());
      return Promise.race([shutdown, timeout]);
    },
  };
}

/** Waits until the output satisfies `check`. */
async function waitForOutput(c: Console, check: (text: string) => boolean, timeoutMs = 3_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!check(c.output())) {
    if (Date.now() > deadline) throw new Error(`output never matched; it is:\n${c.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return c.output();
}

const lines = (text: string) => text.split('\n');

test('lines in, answers out: exact lines, a number picks a button, /commands pass through, empty lines are ignored', async (t) => {
  const c = await startConsole(t, moodAnswers);
  const output = await c.play('hello\n\n   \n1\n/restart\n2\n42\nbye now\n');
  t.deepEqual(lines(output), [
    GREETING,
    'Bot: Hey! How are you?',
    '1: great (/mood_great)',
    '2: sad (/mood_unhappy)',
    'Bot: Great, carry on!',
    'Bot: command /restart',
    // The last answer with buttons is still the greeting: 2 is "sad".
    'Bot: command /mood_unhappy',
    // No button 42: the number is sent as it is.
    'Bot: you said: 42',
    'Bot: you said: bye now',
    '',
  ]);
  t.deepEqual(
    c.bot.received.map((m) => m.text),
    ['hello', '/mood_great', '/restart', '/mood_unhappy', '42', 'bye now'],
  );
  for (const message of c.bot.received) {
    t.is(message.senderId, 'console_user');
    t.is(message.inputChannel, 'console');
  }
  t.false(output.includes('\u001b'), 'no escape codes when the input is not a terminal');
  t.false(output.includes('Your input'), 'no prompt when the input is not a terminal');
});

test('every kind of answer has its line format; numbering runs across one answer, cards included', async (t) => {
  const c = await startConsole(t, (message) => {
    if (message.text === 'show') {
      return [
        { text: 'first line\nsecond line' },
        { text: 'one\n\ntwo' },
        { image: 'https://img.test/cat.jpg' },
        { text: 'Pick one', quick_replies: [{ title: 'yes', payload: '/affirm' }, { title: 'no', payload: 'no' }] },
        { attachment: { type: 'video', url: 'https://v.test/a.mp4' } },
        { custom: { kind: 'map', lat: 1 } },
        {
          text: 'Cards:',
          buttons: [{ title: 'all', payload: '/all' }],
          elements: [
            { title: 'Red', subtitle: 'a red one', image_url: 'https://img.test/red.jpg', buttons: [{ title: 'buy red', payload: '/buy{"c":"red"}' }] },
            { title: 'Blue', buttons: [{ title: 'Site', url: 'https://blue.test' }] },
          ],
        },
        { text: 'no buttons here' },
      ];
    }
    return [{ text: `got ${message.text}` }];
  });
  const output = await c.play('show\n2\n3\n1\n');
  t.deepEqual(lines(output), [
    GREETING,
    'Bot: first line',
    '     second line',
    'Bot: one',
    'Bot: two',
    'Image: https://img.test/cat.jpg',
    'Bot: Pick one',
    '1: yes (/affirm)',
    '2: no',
    'Attachment: {"type":"video","url":"https://v.test/a.mp4"}',
    'Custom: {"kind":"map","lat":1}',
    'Bot: Cards:',
    '1: all (/all)',
    'Card: Red : a red one',
    'Image: https://img.test/red.jpg',
    '2: buy red (/buy{"c":"red"})',
    'Card: Blue',
    '3: Site (https://blue.test)',
    'Bot: no buttons here',
    'Bot: got /buy{"c":"red"}',
    // A link button has no payload: its title is sent.
    'Bot: got Site',
    'Bot: got /all',
    '',
  ]);
});

test('each line is answered before the next is read: a number typed at once picks from the slow answer before it', async (t) => {
  let running = 0;
  let overlapped = false;
  const c = await startConsole(t, async (message) => {
    running++;
    if (running > 1) overlapped = true;
    // The first message is the slowest: a channel that did not wait would answer out of order.
    await new Promise((resolve) => setTimeout(resolve, message.text === 'hello' ? 150 : 5));
    running--;
    return moodAnswers(message);
  });
  const script = ['hello', '1', ...Array.from({ length: 20 }, (_, i) => `line ${i}`)].join('\n') + '\n';
  const output = await c.play(script);
  t.false(overlapped, 'the bot never handles two lines at once');
  t.deepEqual(lines(output), [
    GREETING,
    'Bot: Hey! How are you?',
    '1: great (/mood_great)',
    '2: sad (/mood_unhappy)',
    'Bot: Great, carry on!',
    ...Array.from({ length: 20 }, (_, i) => `Bot: you said: line ${i}`),
    '',
  ]);
});

test('end of input waits for the pending answer, then asks the host to shut down; without a handler the host closes', async (t) => {
  const c = await startConsole(t, async () => {
    await new Promise((resolve) => setTimeout(resolve, 100));
    return [{ text: 'late answer' }];
  });
  const atShutdown = await c.play('hi');
  t.true(atShutdown.endsWith('Bot: late answer\n'), `the answer was written before the shutdown request:\n${atShutdown}`);

  // Through the real host: no CLI handler, so the server closes itself.
  const d = await startConsole(t, moodAnswers);
  d.host.server.onShutdownRequest = undefined;
  d.input.end('hello\n');
  const deadline = Date.now() + 3_000;
  while (d.host.server.httpServer.listening && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.false(d.host.server.httpServer.listening, 'the host closed at the end of input');
  t.regex(d.output(), /Bot: Hey! How are you\?\n1: great/);
});

test('a terminal gets the prompt after the greeting and after each answer; sender and prompt come from credentials', async (t) => {
  const c = await startConsole(t, moodAnswers, { sender: 'ada', prompt: 'you> ' }, true);
  await waitForOutput(c, (text) => text.includes('you> '));
  c.input.write('hello\n');
  const output = await waitForOutput(c, (text) => text.split('you> ').length === 3);
  const plain = output.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
  t.regex(plain, new RegExp(`^${GREETING.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`));
  t.regex(plain, /you> hello[\s\S]*Bot: Hey! How are you\?\n1: great \(\/mood_great\)\n2: sad \(\/mood_unhappy\)\nyou> $/);
  t.is(c.bot.received[0]?.senderId, 'ada');
  await c.play('');
});

test('the console channel has the health route only, and checks its credentials', async (t) => {
  const c = await startConsole(t, moodAnswers);
  const health = await c.host.request('/webhooks/console/');
  t.is(health.status, 200);
  t.deepEqual(health.json, { status: 'ok' });
  t.is((await c.host.request('/webhooks/console/webhook', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status, 404);
  t.throws(() => ConsoleInput.fromCredentials({ sender: '' }), { instanceOf: CredentialsError, message: /sender/ });
  await c.play('');
});

test('end to end through a pipe: node dist/run.js --channel console answers a script and exits 0', async (t) => {
  const child = spawn(process.execPath, [RUN, '--channel', 'console', '--port', '0', '--host', '127.0.0.1'], {
    cwd: PACKAGE_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end('hello\n1\n');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  // 'close', not 'exit': only then has all of the child's output been read.
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  t.is(code, 0, `exit code; stderr:\n${stderr}\nstdout:\n${stdout}`);
  const out = lines(stdout);
  const at = (line: string) => out.indexOf(line);
  t.true(at(GREETING) >= 0, `greeting in:\n${stdout}`);
  t.true(at('Bot: Hey! How are you?') > at(GREETING));
  t.true(at('1: great (/mood_great)') > at('Bot: Hey! How are you?'));
  t.true(at('2: sad (/mood_unhappy)') > at('1: great (/mood_great)'));
  t.true(at('Bot: Great, carry on!') > at('2: sad (/mood_unhappy)'), `answers in order in:\n${stdout}`);
  t.false(out.some((line) => line.trimStart().startsWith('{')), `no JSON log lines on stdout:\n${stdout}`);
  t.false(stdout.includes('\u001b'), 'no escape codes on a pipe');
});
