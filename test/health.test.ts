// Liveness, readiness and the drain, in process: GET /health/live and /health/ready on a real listening server, a
// channel that failed to start or reports itself not ready, an unreachable store, and what close() waits for and
// what it logs when its grace runs out.
import test from 'ava';
import nock from 'nock';
import {
  CollectingOutputChannel,
  ConfigError,
  InputChannel,
  MemoryStore,
  SwitchboardServer,
  UserMessage,
  jsonBody,
  type BotMessage,
  type OnNewMessage,
  type Router,
} from 'switchboard';
import RestInput from '../channels/rest/index.js';
import TelegramInput from '../channels/telegram/index.js';
import { ScriptedBot, captureLogs, startServer } from './harness.js';

test.before(() => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
});

const JSON_TYPE = { 'content-type': 'application/json' };

/** A gate a test opens when it wants the bot (or background work) to finish. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/**
 * A minimal third-party-style channel: `POST /webhook {id, from, text}` is acknowledged at once; the message is
 * queued in the background through `this.background`, after `before` settles (a platform fetch, say).
 */
class ProbeInput extends InputChannel {
  before: Promise<void> = Promise.resolve();
  readonly output = new CollectingOutputChannel();
  startError: Error | undefined;
  name(): string {
    return 'probe';
  }
  override async start(): Promise<void> {
    if (this.startError) throw this.startError;
  }
  setReady(reason: string | undefined): void {
    if (reason === undefined) this.markReady();
    else this.markNotReady(reason);
  }
  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    router.post('/webhook', (ctx) => {
      const body = jsonBody(ctx) as { id: string; from: string; text: string };
      const work = this.before.then(() =>
        onNewMessage.enqueue(new UserMessage({ text: body.text, senderId: body.from, messageId: body.id, output: this.output, inputChannel: this.name() })),
      );
      this.background(work, { sender: body.from, messageId: body.id });
      ctx.body = 'ok';
    });
    return router;
  }
}

async function get(url: string): Promise<{ status: number; body: Record<string, unknown>; connection: string | null }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, connection: response.headers.get('connection') };
}

test('GET /health/live and /health/ready answer 200 on a started server; GET /health keeps its shape', async (t) => {
  const { url } = await startServer(t, [new RestInput()]);
  t.deepEqual(await get(`${url}/health/live`), { status: 200, body: { status: 'ok' }, connection: 'keep-alive' });
  t.deepEqual(await get(`${url}/health/ready`), { status: 200, body: { status: 'ready' }, connection: 'keep-alive' });
  const health = await get(`${url}/health`);
  t.is(health.status, 200);
  t.deepEqual(Object.keys(health.body), ['status', 'version', 'channels']);
  t.is(health.body.status, 'ok');
  t.deepEqual(health.body.channels, ['rest']);
});

test("readiness is 503 while Telegram's setWebhook fails, naming the reason, and 200 once POST /set_webhook succeeds", async (t) => {
  const token = '123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11';
  const api = nock('https://api.telegram.org');
  api.post(`/bot${token}/setWebhook`).reply(400, { ok: false, error_code: 400, description: 'Bad Request: bad webhook: Failed to resolve host: Name or service not known' });
  const telegram = TelegramInput.fromCredentials({ access_token: token, verify: 'switchboard_bot', webhook_url: 'https://bot.example.com/webhooks/telegram/webhook' });
  const { url } = await startServer(t, [telegram, new RestInput()]);
  t.true(api.isDone(), 'setWebhook was called at startup');

  const failed = await get(`${url}/health/ready`);
  t.is(failed.status, 503);
  t.deepEqual(failed.body, { status: 'not ready', reasons: ['telegram: setWebhook failed: Bad Request: bad webhook: Failed to resolve host: Name or service not known'] });
  t.false(JSON.stringify(failed.body).includes(token), 'the bot token is not in the answer');
  // Alive all the same, and the other channels serve.
  t.is((await get(`${url}/health/live`)).status, 200);
  t.is((await fetch(`${url}/webhooks/rest/webhook`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ sender: 'u', message: 'hi' }) })).status, 200);

  api.post(`/bot${token}/setWebhook`).reply(200, { ok: true, result: true, description: 'Webhook was set' });
  const retried = await fetch(`${url}/webhooks/telegram/set_webhook`, { method: 'POST', headers: { 'x-telegram-bot-api-secret-token': telegram.secretToken } });
  t.is(retried.status, 200);
  t.deepEqual(await get(`${url}/health/ready`), { status: 200, body: { status: 'ready' }, connection: 'keep-alive' });
  t.true(api.isDone());
});

test("a channel whose start() throws leaves the server running and not ready; a channel's own markNotReady is named too", async (t) => {
  const probe = new ProbeInput();
  probe.startError = new Error('platform unreachable: https://api.example.com/?key=SECRETKEY');
  const { url, logs } = await startServer(t, [probe, new RestInput()]);
  const ready = await get(`${url}/health/ready`);
  t.is(ready.status, 503);
  t.deepEqual(ready.body, { status: 'not ready', reasons: ['probe: failed to start'] });
  t.regex(logs.text, /"channel":"probe".*"msg":"channel failed to start"/);
  t.is((await fetch(`${url}/webhooks/rest/webhook`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ sender: 'u', message: 'hi' }) })).status, 200);

  probe.setReady('queue full');
  t.deepEqual((await get(`${url}/health/ready`)).body, { status: 'not ready', reasons: ['probe: failed to start', 'probe: queue full'] });
});

test('a configuration error in start() still stops startup', async (t) => {
  const probe = new ProbeInput();
  probe.startError = new ConfigError('probe: missing "token"');
  const server = new SwitchboardServer({ channels: [probe], bot: new ScriptedBot() });
  t.teardown(() => server.close(0));
  await t.throwsAsync(server.listen(0, '127.0.0.1'), { instanceOf: ConfigError, message: 'probe: missing "token"' });
});

test('readiness is 503 when the store cannot be reached', async (t) => {
  class FlakyStore extends MemoryStore {
    reachable = false;
    async ping(): Promise<void> {
      if (!this.reachable) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
    }
  }
  const store = new FlakyStore();
  const { logger } = captureLogs();
  const server = new SwitchboardServer({ channels: [new RestInput()], bot: new ScriptedBot(), store, logger });
  t.teardown(() => server.close(0));
  const { port } = await server.listen(0, '127.0.0.1');
  t.deepEqual((await get(`http://127.0.0.1:${port}/health/ready`)).body, { status: 'not ready', reasons: ['store unreachable'] });
  store.reachable = true;
  t.is((await get(`http://127.0.0.1:${port}/health/ready`)).status, 200);
});

test('during the drain readiness is 503 and liveness 200 while an in-flight rest request is still answered; then the listener closes', async (t) => {
  const held = gate();
  const bot = new ScriptedBot(async (message) => {
    await held.wait;
    return [{ text: `late answer to ${message.text}` }];
  });
  const { server, url } = await startServer(t, [new RestInput()], { bot });
  const pending = fetch(`${url}/webhooks/rest/webhook`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ sender: 'alice', message: 'hello' }) });
  await bot.waitFor(1);

  const closed = server.close(10_000);
  const ready = await get(`${url}/health/ready`);
  t.is(ready.status, 503);
  t.deepEqual(ready.body, { status: 'not ready', reasons: ['shutting down'] });
  t.is(ready.connection, 'close', 'during the drain each response closes its connection');
  t.is((await get(`${url}/health/live`)).status, 200);
  t.true(server.httpServer.listening);

  held.open();
  const response = await pending;
  t.is(response.status, 200);
  t.deepEqual(await response.json(), [{ recipient_id: 'alice', text: 'late answer to hello' }]);
  t.deepEqual(await closed, { abandoned: 0 });
  t.false(server.httpServer.listening);
});

test("the drain waits for a channel's background work and the message it queues, acknowledged before close()", async (t) => {
  const fetched = gate();
  const probe = new ProbeInput();
  probe.before = fetched.wait;
  const bot = new ScriptedBot([{ text: 'answered' }]);
  const { server, url } = await startServer(t, [probe], { bot });
  const ack = await fetch(`${url}/webhooks/probe/webhook`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ id: 'm-1', from: 'carol', text: 'hi' }) });
  t.is(ack.status, 200);
  t.is(bot.received.length, 0, 'the message is still being "fetched"');

  const closed = server.close(10_000);
  t.is((await get(`${url}/health/ready`)).status, 503);
  fetched.open();
  t.deepEqual(await closed, { abandoned: 0 });
  t.is(bot.received.length, 1);
  t.deepEqual(probe.output.messages, [{ recipient_id: 'carol', text: 'answered' }]);
});

test('at the end of the grace each abandoned message, request and background task is logged at error with channel, sender and id', async (t) => {
  const never = new Promise<BotMessage[]>(() => {});
  const bot = new ScriptedBot(() => never);
  const probe = new ProbeInput();
  const { logger, lines } = captureLogs();
  const server = new SwitchboardServer({ channels: [probe, new RestInput()], bot, logger });
  t.teardown(() => server.close(0));
  const { port } = await server.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;

  // carol: m-1 with the bot, m-2 queued behind it; dave: still being "fetched" when the grace ends.
  for (const id of ['m-1', 'm-2']) {
    t.is((await fetch(`${url}/webhooks/probe/webhook`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ id, from: 'carol', text: 'hi' }) })).status, 200);
  }
  await bot.waitFor(1);
  probe.before = new Promise(() => {});
  t.is((await fetch(`${url}/webhooks/probe/webhook`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ id: 'm-3', from: 'dave', text: 'hi' }) })).status, 200);
  // erin's rest request is open, waiting for the bot.
  const rest = fetch(`${url}/webhooks/rest/webhook`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ sender: 'erin', message: 'hi' }) }).catch((error: unknown) => error);
  await bot.waitFor(2);

  const report = await server.close(50);
  t.deepEqual(report, { abandoned: 5 });
  t.true((await rest) instanceof Error, 'the open connection is closed at last');
  const abandoned = lines()
    .filter((line) => line.level === 50 && String(line.msg).startsWith('shutdown grace expired'))
    .map(({ msg, channel, sender, messageId, state, method, path }) => ({ msg, channel, sender, messageId, state, method, path }));
  t.deepEqual(
    abandoned.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    [
      { msg: 'shutdown grace expired: background work abandoned', channel: 'probe', sender: 'dave', messageId: 'm-3', state: undefined, method: undefined, path: undefined },
      { msg: 'shutdown grace expired: message abandoned', channel: 'probe', sender: 'carol', messageId: 'm-1', state: 'with the bot', method: undefined, path: undefined },
      { msg: 'shutdown grace expired: message abandoned', channel: 'probe', sender: 'carol', messageId: 'm-2', state: 'queued', method: undefined, path: undefined },
      { msg: 'shutdown grace expired: message abandoned', channel: 'rest', sender: 'erin', messageId: undefined, state: 'with the bot', method: undefined, path: undefined },
      { msg: 'shutdown grace expired: request abandoned', channel: undefined, sender: undefined, messageId: undefined, state: undefined, method: 'POST', path: '/webhooks/rest/webhook' },
    ],
  );
});
