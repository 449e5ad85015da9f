import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { echoChannelSource, makeProject, PACKAGE_ROOT, RUN, runCli as run, type Project } from './fixtures.js';

const runCli = (args: string[], cwd?: string) => run(args, { cwd });

interface Running {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
}

/** Starts `node dist/run.js ARGS --port 0` and waits for its banner. */
async function startCli(t: import('ava').ExecutionContext, args: string[], cwd = PACKAGE_ROOT): Promise<Running> {
  const child = spawn(process.execPath, [RUN, '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const deadline = Date.now() + 30_000;
  while (!/listening on (http:\/\/\S+)/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`CLI did not start: ${err}${out}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const url = /listening on (http:\/\/\S+)/.exec(out)![1]!;
  return { child, url, stdout: () => out, stderr: () => err };
}

/** Runs the CLI to completion (for commands that exit). */

async function say(url: string, sender: string, message: string): Promise<unknown> {
  const response = await fetch(`${url}/webhooks/rest/webhook`, { method: 'POST', body: JSON.stringify({ sender, message }), headers: { 'content-type': 'application/json' } });
  return response.json();
}

let project: Project;
test.before(() => {
  project = makeProject();
  project.write('some-local-module.js', echoChannelSource('LocalIO', 'local'));
  project.write('my-bot.js', 'export default async function (message) { return [{ text: `you said: ${message.text}` }]; }\n');
  project.write('bot.yml', 'intents:\n  ping:\n    examples: [ping]\n    answers:\n      - text: pong\nfallback:\n  - text: what?\n');
  project.write('missing-key.yml', 'rest:\ncallback:\n  batch: false\n');
  project.write('broken.yml', 'rest:\n  - a\n b: c\n');
});
test.after.always(() => project?.remove());

test('--help and --version', async (t) => {
  const help = await runCli(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /Usage: switchboard \[options\]/);
  t.regex(help.stdout, /--credentials FILE/);
  const version = await runCli(['--version']);
  t.is(version.code, 0);
  t.regex(version.stdout.trim(), /^\d+\.\d+\.\d+$/);
});

test('with no options it serves the moodbot on the rest channel and prints the webhook URL', async (t) => {
  const cli = await startCli(t, []);
  t.regex(cli.stdout(), /rest\s+http:\/\/127\.0\.0\.1:\d+\/webhooks\/rest\/webhook/);
  t.deepEqual(await say(cli.url, 'new-user', 'hello'), [
    { recipient_id: 'new-user', text: 'Hey! How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }] },
  ]);
  t.deepEqual(await say(cli.url, 'new-user', '/mood_unhappy'), [
    { recipient_id: 'new-user', text: 'Here is something to cheer you up:' },
    { recipient_id: 'new-user', image: 'https://i.imgur.com/nGF1K8f.jpg' },
    { recipient_id: 'new-user', text: 'Did that help you?', buttons: [{ title: 'yes', payload: '/affirm' }, { title: 'no', payload: '/deny' }] },
  ]);
});

test('SIGTERM and SIGINT stop it with exit code 0', async (t) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const cli = await startCli(t, []);
    cli.child.kill(signal);
    const [code] = (await once(cli.child, 'exit')) as [number | null];
    t.is(code, 0, `${signal}: ${cli.stderr()}`);
  }
});

test('--channel ./some-local-module.js loads a plain-JS channel from the working directory', async (t) => {
  const cli = await startCli(t, ['--channel', './some-local-module.js', '--bot', './my-bot.js'], project.dir);
  t.regex(cli.stdout(), /local\s+http:\/\/127\.0\.0\.1:\d+\/webhooks\/local\/webhook/);
  const response = await fetch(`${cli.url}/webhooks/local/webhook`, { method: 'POST', body: '{"text":"hey","from":"u"}', headers: { 'content-type': 'application/json' } });
  t.deepEqual(await response.json(), { channel: 'LocalIO', answers: [{ recipient_id: 'u', text: 'you said: hey' }] });
});

test('--bot bot.yml answers from a rules file', async (t) => {
  const cli = await startCli(t, ['--bot', 'bot.yml'], project.dir);
  t.deepEqual(await say(cli.url, 'a', 'PING!'), [{ recipient_id: 'a', text: 'pong' }]);
  t.deepEqual(await say(cli.url, 'a', 'something else entirely'), [{ recipient_id: 'a', text: 'what?' }]);
});

test('a missing credential key stops startup with file: channel: missing "key" and exit code 2', async (t) => {
  const result = await runCli(['--credentials', 'missing-key.yml', '--port', '0'], project.dir);
  t.is(result.code, 2);
  t.is(result.stderr.trim(), 'switchboard: missing-key.yml: callback: missing "url"');
  t.notRegex(result.stdout, /listening/);
});

test('broken YAML stops startup naming file, line and column', async (t) => {
  const result = await runCli(['--credentials', 'broken.yml', '--port', '0'], project.dir);
  t.is(result.code, 2);
  t.regex(result.stderr, /^switchboard: broken\.yml:3:\d+: invalid YAML: /);
  t.notRegex(result.stderr, /\n\s+at /, 'no stack trace');
});

test('an unknown channel spec stops startup saying what was tried', async (t) => {
  const result = await runCli(['--channel', 'nosuchthing.Foo', '--port', '0'], project.dir);
  t.is(result.code, 2);
  t.regex(result.stderr, /^switchboard: --channel: nosuchthing\.Foo: cannot load channel "nosuchthing\.Foo": tried module "nosuchthing\.Foo": not found/);
});

test('an unknown option or bad port is a usage error', async (t) => {
  const unknown = await runCli(['--frobnicate']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /Unknown option '--frobnicate'/);
  const port = await runCli(['--port', 'eighty']);
  t.is(port.code, 2);
  t.is(port.stderr.trim(), 'switchboard: --port must be a number from 0 to 65535, got "eighty"');
});

test('a port in use is a clear error', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const result = await runCli(['--port', String(port), '--host', '127.0.0.1']);
  t.is(result.code, 2);
  t.is(result.stderr.trim(), `switchboard: port ${port} is already in use; pick another with --port`);
});

test('with no options the web chat page is served at /webchat and its URL printed; --no-webchat turns it off', async (t) => {
  const cli = await startCli(t, []);
  t.regex(cli.stdout(), /socketio\s+http:\/\/127\.0\.0\.1:\d+\/webhooks\/socketio\//);
  t.regex(cli.stdout(), /web chat\s+http:\/\/127\.0\.0\.1:\d+\/webchat/);
  const page = await fetch(`${cli.url}/webchat`);
  t.is(page.status, 200);
  t.regex(page.headers.get('content-type') ?? '', /^text\/html/);
  t.regex(await page.text(), /<meta name="switchboard-webchat"/);
  const client = await fetch(`${cli.url}/socket.io/socket.io.js`);
  t.is(client.status, 200);

  const off = await startCli(t, ['--no-webchat']);
  t.notRegex(off.stdout(), /web chat/);
  t.is((await fetch(`${off.url}/webchat`)).status, 404);
});

test('--metrics-port serves /metrics on its own port (printed), not on the main one; a metrics port in use is named', async (t) => {
  const cli = await startCli(t, ['--channel', 'rest', '--metrics-port', '0']);
  const metricsUrl = /metrics\s+(http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(cli.stdout())?.[1];
  t.truthy(metricsUrl);
  t.not(new URL(metricsUrl!).port, new URL(cli.url).port);
  t.deepEqual(await say(cli.url, 'me', 'hello'), [{ recipient_id: 'me', text: 'Hey! How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }] }]);
  const scrape = await (await fetch(metricsUrl!)).text();
  t.regex(scrape, /^switchboard_messages_received_total\{channel="rest",outcome="handled"\} 1$/m);
  t.regex(scrape, /^switchboard_bot_duration_seconds_count\{kind="rules",result="ok"\} 1$/m);
  t.is((await fetch(`${cli.url}/metrics`)).status, 404);

  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const result = await runCli(['--port', '0', '--host', '127.0.0.1', '--channel', 'rest', '--metrics-port', String(port)]);
  t.is(result.code, 2);
  t.is(result.stderr.trim(), `switchboard: metrics port ${port} is already in use; pick another with --metrics-port`);
});
