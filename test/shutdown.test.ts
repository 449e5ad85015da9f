// Shutdown through the real CLI process (`node dist/run.js`): SIGTERM with messages in flight loses none of them,
// Webex's fetch after its 200 is drained, the grace's end names what it abandons, and a second signal exits at once.
// The platforms' APIs are local stub servers given as each section's `api_url` (nock cannot reach a child process).
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseCli, start } from '#src/cli.js';
import { ConfigError } from '#src/errors.js';
import { makeProject, PACKAGE_ROOT, type Project } from './fixtures.js';

const RUN = path.join(PACKAGE_ROOT, 'dist', 'run.js');
const JSON_TYPE = { 'content-type': 'application/json' };
const SLACK_SECRET = 'slack-signing-secret-for-tests';
const WEBEX_SECRET = 'webex-webhook-secret-for-tests';

interface Running {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Resolves when `condition()` holds; fails the test (does not hang) if it never does. */
async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Starts `node dist/run.js ARGS --port 0` in `cwd` and waits for its banner. */
async function startCli(t: ExecutionContext, args: string[], cwd: string): Promise<Running> {
  const child = spawn(process.execPath, [RUN, '--port', '0', '--host', '127.0.0.1', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  // 'close', not 'exit': only then has all of the child's output been read (its last log line included).
  const exited = once(child, 'close').then(([code]) => code as number | null);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await until(() => /listening on (http:\/\/\S+)/.test(out) || child.exitCode !== null, 'the banner');
  const match = /listening on (http:\/\/\S+)/.exec(out);
  if (!match) throw new Error(`CLI did not start: ${err}${out}`);
  return { child, url: match[1]!, stdout: () => out, stderr: () => err, exited };
}

interface Recorded {
  method: string;
  path: string;
  body: unknown;
}

/** A stub platform API on an ephemeral port: records each request and answers with `handle`. */
async function stubApi(t: ExecutionContext, handle: (request: Recorded, res: ServerResponse) => void | Promise<void>): Promise<{ url: string; received: Recorded[] }> {
  const received: Recorded[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      let body: unknown = raw;
      try {
        body = raw === '' ? undefined : JSON.parse(raw);
      } catch {
        // not JSON: kept as text
      }
      const request = { method: req.method ?? '', path: req.url ?? '', body };
      received.push(request);
      void handle(request, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

function reply(res: ServerResponse, body: unknown): void {
  res.writeHead(200, JSON_TYPE).end(JSON.stringify(body));
}

/** An Events API `event_callback` with a direct message, shaped as in Slack's documentation. */
function slackMessage(index: number): string {
  return JSON.stringify({
    token: 'XXYYZZ',
    team_id: 'T123ABC456',
    api_app_id: 'A123ABC456',
    event: { type: 'message', channel: `D0000${index}`, user: `U0000${index}`, text: `slack ${index}`, ts: `1355517523.0000${index}`, event_ts: `1355517523.0000${index}`, channel_type: 'im' },
    type: 'event_callback',
    authed_users: ['U0BOT'],
    authorizations: [{ enterprise_id: null, team_id: 'T123ABC456', user_id: 'U0BOT', is_bot: true, is_enterprise_install: false }],
    event_id: `Ev0000${index}`,
    event_time: 1355517523,
  });
}

function slackHeaders(raw: string): Record<string, string> {
  const ts = String(Math.floor(Date.now() / 1000));
  return { ...JSON_TYPE, 'x-slack-request-timestamp': ts, 'x-slack-signature': `v0=${createHmac('sha256', SLACK_SECRET).update(`v0:${ts}:${raw}`).digest('hex')}` };
}

let project: Project;
test.before(() => {
  project = makeProject();
  // Holds every message until the process gets SIGTERM (so all of them are in flight when it comes), then answers
  // each one slowly. It tells stderr about each message it receives.
  project.write(
    'gated-bot.js',
    `let released = false;
const waiting = [];
process.once('SIGTERM', () => { released = true; for (const go of waiting) go(); });
let count = 0;
export default async function (message) {
  const n = count++;
  process.stderr.write('bot received ' + message.senderId + '\\n');
  if (!released) await new Promise((resolve) => waiting.push(resolve));
  // rest answers come last: the queue empties just as their responses are being written.
  await new Promise((resolve) => setTimeout(resolve, message.inputChannel === 'rest' ? 400 : 100 + (n % 10) * 20));
  // A rest answer large enough that writing it takes a few turns of the event loop: closing connections as soon as
  // the queue is empty would cut it.
  if (message.inputChannel === 'rest') return [{ text: 'echo ' + message.text }, { custom: { padding: 'x'.repeat(256 * 1024) } }];
  return [{ text: 'echo ' + message.text }];
}
`,
  );
  project.write('hung-bot.js', `export default async function (message) {\n  process.stderr.write('bot received ' + message.senderId + '\\n');\n  return new Promise(() => {});\n}\n`);
  project.write('echo-bot.js', 'export default async function (message) { return [{ text: `echo ${message.text}` }]; }\n');
});
test.after.always(() => project?.remove());

test('SIGTERM with 100 messages in flight to a slow bot (rest and signed Slack events): all 100 answered, exit code 0', async (t) => {
  const slack = await stubApi(t, (request, res) => reply(res, { ok: true, channel: (request.body as { channel?: string }).channel, ts: '1503435956.000247' }));
  project.write('slack-and-rest.yml', `rest:\nslack:\n  slack_token: xoxb-test-token\n  slack_signing_secret: ${SLACK_SECRET}\n  api_url: ${slack.url}/api\n`);
  const cli = await startCli(t, ['--credentials', 'slack-and-rest.yml', '--bot', './gated-bot.js', '--bot-concurrency', '200', '--log-level', 'warn'], project.dir);

  const rest: Array<Promise<{ status: number; body: unknown }>> = [];
  const acks: Array<Promise<number>> = [];
  for (let i = 0; i < 50; i++) {
    rest.push(
      fetch(`${cli.url}/webhooks/rest/webhook`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ sender: `rest-${i}`, message: `rest ${i}` }) }).then(async (response) => ({
        status: response.status,
        body: await response.json(),
      })),
    );
    const raw = slackMessage(i);
    acks.push(fetch(`${cli.url}/webhooks/slack/webhook`, { method: 'POST', headers: slackHeaders(raw), body: raw }).then((response) => response.status));
  }
  t.deepEqual(await Promise.all(acks), Array(50).fill(200), 'Slack got its 200s at once');
  await until(() => (cli.stderr().match(/^bot received /gm) ?? []).length === 100, 'the bot to hold all 100 messages');

  cli.child.kill('SIGTERM');
  const answers = await Promise.all(rest);
  t.deepEqual(answers, Array.from({ length: 50 }, (_, i) => ({ status: 200, body: [{ recipient_id: `rest-${i}`, text: `echo rest ${i}` }, { recipient_id: `rest-${i}`, custom: { padding: 'x'.repeat(256 * 1024) } }] })));
  t.is(await cli.exited, 0, cli.stdout());
  const posted = slack.received.filter((r) => r.method === 'POST' && r.path === '/api/chat.postMessage').map((r) => (r.body as { text: string }).text);
  t.deepEqual(posted.sort(), Array.from({ length: 50 }, (_, i) => `echo slack ${i}`).sort());
  t.notRegex(cli.stdout(), /abandoned/);
});

test('a Webex notification acknowledged just before SIGTERM is fetched and answered; readiness is 503 meanwhile', async (t) => {
  const BOT = 'Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ib3Q';
  const PERSON = 'Y2lzY29zcGFyazovL3VzL1BFT1BMRS9tYXR0';
  const ROOM = 'Y2lzY29zcGFyazovL3VzL1JPT00vcm9vbQ';
  const MESSAGE = 'Y2lzY29zcGFyazovL3VzL01FU1NBR0UvbXNn';
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const webex = await stubApi(t, async (request, res) => {
    if (request.method === 'GET' && request.path === '/v1/people/me') return reply(res, { id: BOT, emails: ['switchboard@webex.bot'], displayName: 'Switchboard', type: 'bot' });
    if (request.method === 'GET' && request.path === `/v1/messages/${MESSAGE}`) {
      await released; // the fetch is in flight when SIGTERM comes
      return reply(res, { id: MESSAGE, roomId: ROOM, roomType: 'direct', text: 'are you there?', personId: PERSON, personEmail: 'matt@example.com', created: new Date().toISOString() });
    }
    if (request.method === 'POST' && request.path === '/v1/messages') return reply(res, { id: 'Y2lzY29zcGFyazovL3VzL01FU1NBR0UvYW5zd2Vy', roomId: ROOM });
    res.writeHead(404).end();
  });
  project.write('webex.yml', `webexteams:\n  access_token: webex-access-token\n  webhook_secret: ${WEBEX_SECRET}\n  api_url: ${webex.url}/v1\n`);
  const cli = await startCli(t, ['--credentials', 'webex.yml', '--bot', './echo-bot.js', '--log-level', 'warn'], project.dir);

  // A notification as Webex posts it (developer.webex.com, Webhooks guide): ids only.
  const raw = JSON.stringify({
    id: 'Y2lzY29zcGFyazovL3VzL1dFQkhPT0svd2ViaG9vaw',
    name: 'Switchboard',
    targetUrl: 'https://bot.example.com/webhooks/webexteams/webhook',
    resource: 'messages',
    event: 'created',
    orgId: 'OTZhYmMyYWEtM2RjYy0xMWU1LWExNTItZmUzNDgxOWNkYzlh',
    createdBy: BOT,
    appId: 'Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL0MzMmM4MDc3NDBjNmU3ZGYxMWRhZjE2ZjIyOGRmNjI4YmJjYTQ5YmE1MmZlY2JiMmM3ZDUxNWNiNGEwY2M5MWFh',
    ownedBy: 'creator',
    status: 'active',
    created: '2023-11-22T10:01:02.000Z',
    actorId: PERSON,
    data: { id: MESSAGE, roomId: ROOM, roomType: 'direct', personId: PERSON, personEmail: 'matt@example.com', created: new Date().toISOString() },
  });
  const ack = await fetch(`${cli.url}/webhooks/webexteams/webhook`, {
    method: 'POST',
    headers: { ...JSON_TYPE, 'x-spark-signature': createHmac('sha1', WEBEX_SECRET).update(raw).digest('hex') },
    body: raw,
  });
  t.is(ack.status, 200);
  await until(() => webex.received.some((r) => r.path === `/v1/messages/${MESSAGE}`), 'the message fetch');

  cli.child.kill('SIGTERM');
  let ready: { status: number; body: unknown } | undefined;
  await until(async () => {
    const response = await fetch(`${cli.url}/health/ready`);
    ready = { status: response.status, body: await response.json() };
    return response.status === 503;
  }, 'readiness to turn 503');
  t.deepEqual(ready, { status: 503, body: { status: 'not ready', reasons: ['shutting down'] } });
  t.is((await fetch(`${cli.url}/health/live`)).status, 200);

  release();
  t.is(await cli.exited, 0, cli.stdout());
  const answer = webex.received.find((r) => r.method === 'POST' && r.path === '/v1/messages');
  t.like(answer?.body, { roomId: ROOM, text: 'echo are you there?' });
});

test('when --shutdown-grace runs out, each abandoned message is logged at error with channel, sender and id, and the exit code is 1', async (t) => {
  const slack = await stubApi(t, (_request, res) => reply(res, { ok: true }));
  project.write('slack-and-rest-hung.yml', `rest:\nslack:\n  slack_token: xoxb-test-token\n  slack_signing_secret: ${SLACK_SECRET}\n  api_url: ${slack.url}/api\n`);
  const cli = await startCli(t, ['--credentials', 'slack-and-rest-hung.yml', '--bot', './hung-bot.js', '--shutdown-grace', '300', '--log-level', 'warn'], project.dir);
  const open = fetch(`${cli.url}/webhooks/rest/webhook`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ sender: 'rest-user', message: 'hello' }) }).catch((error: unknown) => error);
  const raw = slackMessage(7);
  t.is((await fetch(`${cli.url}/webhooks/slack/webhook`, { method: 'POST', headers: slackHeaders(raw), body: raw })).status, 200);
  await until(() => (cli.stderr().match(/^bot received /gm) ?? []).length === 2, 'the bot to hold both messages');

  cli.child.kill('SIGTERM');
  t.is(await cli.exited, 1);
  t.true((await open) instanceof Error, 'the open rest request was cut at last');
  const errors = cli
    .stdout()
    .split('\n')
    .filter((line) => line.includes('shutdown grace expired: message abandoned'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  t.deepEqual(
    errors.map(({ level, channel, sender, messageId }) => ({ level, channel, sender, messageId })).sort((a, b) => String(a.channel).localeCompare(String(b.channel))),
    [
      { level: 50, channel: 'rest', sender: 'rest-user', messageId: undefined },
      { level: 50, channel: 'slack', sender: 'U00007', messageId: 'D00007:1355517523.00007' },
    ],
  );
});

test('a second SIGTERM or SIGINT during the drain exits at once: 1 for SIGTERM, 130 for SIGINT', async (t) => {
  for (const [second, code] of [['SIGTERM', 1], ['SIGINT', 130]] as const) {
    const cli = await startCli(t, ['--bot', './hung-bot.js', '--log-level', 'info'], project.dir);
    void fetch(`${cli.url}/webhooks/rest/webhook`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ sender: 'stuck', message: 'hello' }) }).catch(() => undefined);
    await until(() => /^bot received stuck$/m.test(cli.stderr()), 'the bot to hold the message');
    cli.child.kill('SIGTERM');
    await until(() => cli.stdout().includes('shutting down'), 'the drain to start');
    cli.child.kill(second);
    t.is(await cli.exited, code, second);
    t.regex(cli.stdout(), /second signal: exiting without finishing the shutdown/);
  }
});

test('--shutdown-grace sets the server\'s grace (default 25000 ms); it must be a whole number of milliseconds', async (t) => {
  const parsed = parseCli(['--shutdown-grace', '0'], {});
  t.is(parsed.kind === 'run' ? parsed.options.shutdownGraceMs : undefined, 0);
  t.throws(() => parseCli(['--shutdown-grace', '2s'], {}), { instanceOf: ConfigError, message: '--shutdown-grace must be a whole number of at least 0, got "2s"' });

  for (const [args, grace] of [[[], 25_000], [['--shutdown-grace', '1500'], 1_500]] as const) {
    const options = parseCli(['--port', '0', '--host', '127.0.0.1', '--channel', 'rest', '--log-level', 'silent', ...args], {});
    if (options.kind !== 'run') throw new Error('expected a run');
    const started = await start(options.options);
    t.is(started.server.shutdownGraceMs, grace);
    t.deepEqual(await started.server.close(), { abandoned: 0 });
  }
});
