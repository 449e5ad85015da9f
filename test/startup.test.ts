// Startup never waits for a platform (issue 17): channels start at once, the listener and every route are up before
// any platform call, and registrations (Telegram's setWebhook) run in the background with bounded retries, named by
// GET /health/ready until they succeed. No timing is asserted: what must not wait is shown by holding the platform's
// answer until the test has seen the server serve.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, InputChannel, SwitchboardServer, type OnNewMessage, type Router } from 'switchboard';
import { ScriptedBot, captureLogs } from './harness.js';
import { makeProject, RUN } from './fixtures.js';

/** Polls `check` every 20 ms until it returns a value; fails with `what` after 20 s (a guard, not a measurement). */
async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url);
  return { status: response.status, text: await response.text() };
}

/**
 * A Bot API that accepts connections and holds every request unanswered (`hang`), or answers `setWebhook` at once
 * (`ok`). `held`: the requests it is holding.
 */
async function telegramApi(t: ExecutionContext) {
  const state = { mode: 'hang' as 'hang' | 'ok', held: [] as ServerResponse[], answered: 0 };
  const server = createServer((req, res) => {
    req.resume();
    if (state.mode === 'hang') {
      state.held.push(res);
      return;
    }
    state.answered += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, result: true, description: 'Webhook was set' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { state, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('CLI: a Telegram API that never answers delays neither the banner nor /socket.io; readiness names telegram until setWebhook succeeds', async (t) => {
  const api = await telegramApi(t);
  const project = makeProject();
  t.teardown(() => project.remove());
  const credentials = project.write('credentials.yml', [
    'telegram:',
    '  access_token: "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"',
    '  verify: switchboard_bot',
    '  webhook_url: https://bot.example.com/webhooks/telegram/webhook',
    `  api_url: ${api.url}`,
    'socketio:',
    '  session_secret: startup-test-session-secret',
    '',
  ].join('\n'));
  const child = spawn(process.execPath, [RUN, '--credentials', credentials, '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn'], { cwd: project.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));

  // Before this change the banner came only once setWebhook had given up (about 42 s of timeouts and retries).
  const url = await until('the "listening on" banner', () => {
    if (child.exitCode !== null) throw new Error(`the CLI exited: ${stderr}`);
    return /listening on (http:\/\/\S+)/.exec(stdout)?.[1];
  });
  await until('setWebhook to reach the API', () => (api.state.held.length > 0 ? true : undefined));
  t.is(api.state.answered, 0, 'the API has answered nothing');

  const handshake = await get(`${url}/socket.io/?EIO=4&transport=polling`);
  t.is(handshake.status, 200, 'the socket.io handshake is served while setWebhook hangs');
  t.regex(handshake.text, /"sid":"/);
  t.is((await get(`${url}/health`)).status, 200);
  const waiting = await get(`${url}/health/ready`);
  t.is(waiting.status, 503);
  t.deepEqual(JSON.parse(waiting.text), { status: 'not ready', reasons: ['telegram: registering with the platform'] });
  t.true(api.state.held.every((res) => !res.writableEnded), 'setWebhook is still unanswered');

  // The held call fails (connection reset); the host tries again, and now the API answers.
  api.state.mode = 'ok';
  for (const res of api.state.held) res.destroy();
  const ready = await until('readiness after setWebhook succeeded', async () => {
    const answer = await get(`${url}/health/ready`);
    return answer.status === 200 ? answer : undefined;
  });
  t.deepEqual(JSON.parse(ready.text), { status: 'ready' });
  t.is(api.state.answered, 1, 'one successful setWebhook');
  t.regex(stdout, /registration with the platform failed; trying again/);
  t.false(stdout.includes('ABC-DEF1234ghIkl'), 'the bot token is not logged');
});

/** One registration attempt the test settles by hand: `resolve(reason)` (undefined: success). */
interface Attempt {
  signal: AbortSignal;
  resolve: (reason: string | undefined) => void;
}

/** A channel whose start() and register() the test drives. */
class ProbeInput extends InputChannel {
  readonly attempts: Attempt[] = [];
  private readonly waiting: Array<(attempt: Attempt) => void> = [];
  startWork: () => Promise<void> = async () => undefined;
  constructor(private readonly prefix = 'probe') {
    super();
  }
  name(): string {
    return this.prefix;
  }
  router(_onNewMessage: OnNewMessage): Router {
    return this.newRouter();
  }
  override async start(): Promise<void> {
    await this.startWork();
  }
  override register(signal: AbortSignal): Promise<string | undefined> {
    return new Promise((resolve) => {
      const attempt = { signal, resolve };
      this.attempts.push(attempt);
      this.waiting.shift()?.(attempt);
    });
  }
  /** The `n`th attempt (1-based), once the host made it. */
  attempt(n: number): Promise<Attempt> {
    return until(`registration attempt ${n}`, () => this.attempts[n - 1]);
  }
  nowReady(): void {
    this.markReady();
  }
}

async function listen(t: ExecutionContext, channels: InputChannel[], registration = { attempts: 5, minDelayMs: 1, maxDelayMs: 2 }) {
  const logs = captureLogs();
  const server = new SwitchboardServer({ channels, bot: new ScriptedBot(), logger: logs.logger, registration });
  t.teardown(() => server.close(100));
  const { port } = await server.listen(0, '127.0.0.1');
  const ready = async () => {
    const response = await fetch(`http://127.0.0.1:${port}/health/ready`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  return { server, logs, ready };
}

test('channels start at once: a start() waiting for another channel to be starting does not deadlock', async (t) => {
  let aStarting!: () => void;
  let bStarting!: () => void;
  const a = new ProbeInput('a');
  const b = new ProbeInput('b');
  const aStarted = new Promise<void>((resolve) => (aStarting = resolve));
  const bStarted = new Promise<void>((resolve) => (bStarting = resolve));
  // One after another, a's start would wait for b's, which would never begin.
  a.startWork = async () => {
    aStarting();
    await bStarted;
  };
  b.startWork = async () => {
    bStarting();
    await aStarted;
  };
  let guard: NodeJS.Timeout | undefined;
  const deadlocked = new Promise<never>((_, reject) => (guard = setTimeout(() => reject(new Error('start() ran one channel after another')), 20_000)));
  const { ready } = await Promise.race([listen(t, [a, b]), deadlocked]).finally(() => clearTimeout(guard));
  t.deepEqual((await ready()).body, { status: 'not ready', reasons: ['a: registering with the platform', 'b: registering with the platform'] });
});

test('a registration is retried while it fails, readiness naming the reason, until it succeeds', async (t) => {
  const probe = new ProbeInput();
  const { ready, logs } = await listen(t, [probe]);
  (await probe.attempt(1)).resolve('platform unreachable');
  await probe.attempt(2);
  t.deepEqual(await ready(), { status: 503, body: { status: 'not ready', reasons: ['probe: platform unreachable'] } });
  (await probe.attempt(2)).resolve(undefined);
  await until('ready', async () => ((await ready()).status === 200 ? true : undefined));
  t.is(probe.attempts.length, 2);
  t.regex(logs.text(), /"attempt":1,"reason":"platform unreachable".*"msg":"registration with the platform failed; trying again"/);
  t.regex(logs.text(), /"attempts":2,"msg":"registered with the platform"/);
});

test('retries are bounded: after the last attempt the channel stays not ready, named, and is not called again', async (t) => {
  const probe = new ProbeInput();
  const { ready, logs } = await listen(t, [probe], { attempts: 3, minDelayMs: 1, maxDelayMs: 2 });
  for (const n of [1, 2, 3]) (await probe.attempt(n)).resolve(`down ${n}`);
  await until('the giving-up line', () => (logs.text().includes('giving up') ? true : undefined));
  t.is(probe.attempts.length, 3);
  t.deepEqual((await ready()).body, { status: 'not ready', reasons: ['probe: down 3'] });
});

test('a channel that reports itself ready (registered by other means) stops the retries; a throw is retried with a safe reason', async (t) => {
  const probe = new ProbeInput();
  // A long delay: the test acts between attempts.
  const { ready } = await listen(t, [probe], { attempts: 5, minDelayMs: 60_000, maxDelayMs: 60_000 });
  const first = await probe.attempt(1);
  first.resolve('setWebhook failed: Bad Request');
  await until('the failure named', async () => (JSON.stringify((await ready()).body).includes('Bad Request') ? true : undefined));
  probe.nowReady();
  t.deepEqual(await ready(), { status: 200, body: { status: 'ready' } });
  t.true(first.signal.aborted, 'the retries were stopped');
  t.is(probe.attempts.length, 1);

  const throwing = new (class extends ProbeInput {
    override async register(): Promise<string | undefined> {
      throw new Error('GET https://platform.example/?key=SECRET failed');
    }
  })('thrower');
  const other = await listen(t, [throwing]);
  await other.server.registering();
  t.deepEqual((await other.ready()).body, { status: 'not ready', reasons: ['thrower: registration with the platform failed'] });
});

test('shutdown aborts a registration that is still waiting for its platform, and does not wait for it', async (t) => {
  const probe = new ProbeInput();
  const { server } = await listen(t, [probe]);
  const attempt = await probe.attempt(1);
  const report = await server.close(5_000);
  t.true(attempt.signal.aborted);
  t.deepEqual(report, { abandoned: 0 });
});

test('a ConfigError from one start() still stops startup while the other channels start', async (t) => {
  const good = new ProbeInput('good');
  const bad = new ProbeInput('bad');
  bad.startWork = async () => {
    throw new ConfigError('bad: missing "token"');
  };
  const server = new SwitchboardServer({ channels: [good, bad], bot: new ScriptedBot() });
  t.teardown(() => server.close(0));
  await t.throwsAsync(server.listen(0, '127.0.0.1'), { instanceOf: ConfigError, message: 'bad: missing "token"' });
  t.is(good.attempts.length, 0, 'no platform call after a configuration error');
});
