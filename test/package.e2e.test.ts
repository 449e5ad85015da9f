// The third-party path end to end: `npm pack` the host and the example channel package, install both from the
// tarballs into a fresh project (dependencies from the npm cache or registry, our packages from no registry), and run
// the installed CLI with the channel by `package.ClassName` and by bare package name. Then run the example package's
// own tests (node:test + switchboard/testing) against the installed packages.
import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { hmac } from 'switchboard';
import { startFakePlatform, type FakePlatform } from 'switchboard/testing';
import { PACKAGE_ROOT } from './fixtures.js';

const run = promisify(execFile);
const EXAMPLE = path.join(PACKAGE_ROOT, 'examples', 'channel-package');
const SECRET = 'whsec-e2e';

let work: string;
let app: string;

async function pack(dir: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work, '--ignore-scripts'], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  const [info] = JSON.parse(stdout) as Array<{ filename: string }>;
  return path.join(work, info!.filename);
}

test.before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'switchboard-e2e-'));
  app = path.join(work, 'app');
  const host = await pack(PACKAGE_ROOT);
  const channel = await pack(EXAMPLE);
  cpSync(path.join(EXAMPLE, 'dist', 'test'), path.join(app, 'test'), { recursive: true, filter: (f) => !f.endsWith('.d.ts') && !f.endsWith('.map') });
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'e2e-app', private: true, type: 'module' }));
  await run('npm', ['install', host, channel, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, maxBuffer: 16 * 1024 * 1024, timeout: 240_000 });
});

test.after.always(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test.serial('the tarball holds the built package: exports, types and bin, and no tests', (t) => {
  const installed = path.join(app, 'node_modules', 'switchboard');
  for (const file of ['dist/index.js', 'dist/index.d.ts', 'dist/testing/index.js', 'dist/testing/index.d.ts', 'dist/run.js', 'dist/channels/slack/index.js', 'examples/moodbot/bot.yml']) {
    t.true(existsSync(path.join(installed, file)), file);
  }
  t.false(existsSync(path.join(installed, 'dist', 'test')), 'no compiled tests in the package');
  t.true(existsSync(path.join(app, 'node_modules', '.bin', 'switchboard')));
});

test.serial('the public API and the testing kit import by package name', async (t) => {
  const script = `
    const api = await import('switchboard');
    const testing = await import('switchboard/testing');
    const names = ['InputChannel', 'OutputChannel', 'CollectingOutputChannel', 'UserMessage', 'Router', 'HttpClient', 'verifyHmac', 'requireVerified', 'credentialsSchema', 'z'];
    const missing = names.filter((n) => !(n in api));
    const kit = ['conformance', 'startTestHost', 'startFakePlatform', 'ScriptedBot'].filter((n) => !(n in testing));
    console.log(JSON.stringify({ missing, kit }));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app });
  t.deepEqual(JSON.parse(stdout), { missing: [], kit: [] });
});

async function startInstalled(t: import('ava').ExecutionContext, args: string[]): Promise<{ child: ChildProcess; url: string; out: () => string }> {
  const child = spawn(process.execPath, [path.join(app, 'node_modules', '.bin', 'switchboard'), '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', ...args], {
    cwd: app,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const deadline = Date.now() + 30_000;
  while (!/listening on (http:\/\/\S+)/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`switchboard did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, url: /listening on (http:\/\/\S+)/.exec(out)![1]!, out: () => out };
}

async function smsRoundTrip(t: import('ava').ExecutionContext, url: string, platform: FakePlatform): Promise<void> {
  const raw = JSON.stringify({ id: `sms-${Date.now()}`, from: '+15550001111', to: '+15550009999', text: 'hello' });
  const unsigned = await fetch(`${url}/webhooks/echosms/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });
  t.is(unsigned.status, 401);
  const response = await fetch(`${url}/webhooks/echosms/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-echosms-signature': `sha256=${hmac('sha256', SECRET, raw)}` },
    body: raw,
  });
  t.is(response.status, 200);
  for (let i = 0; i < 300 && platform.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.is(platform.requests.length, 1);
  t.is(platform.requests[0]!.headers.authorization, 'Bearer key-e2e');
  // The moodbot's greeting; SMS has no buttons, so they come as a numbered list.
  t.deepEqual(JSON.parse(platform.requests[0]!.body), {
    from: '+15550009999',
    to: '+15550001111',
    text: 'Hey! How are you?\n1: great (/mood_great)\n2: sad (/mood_unhappy)',
  });
}

for (const spec of ['switchboard-channel-echo-sms.EchoSmsInput', 'switchboard-channel-echo-sms']) {
  test.serial(`the installed CLI loads the packed channel as ${spec} and the bot answers through it`, async (t) => {
    const platform = await startFakePlatform();
    t.teardown(() => platform.close());
    const credentials = path.join(app, `credentials-${spec.length}.yml`);
    writeFileSync(credentials, `${spec}:\n  api_key: key-e2e\n  webhook_secret: \${ECHO_SECRET}\n  number: "+15550009999"\n  api_url: ${platform.url}\n`);
    process.env.ECHO_SECRET = SECRET;
    const started = await startInstalled(t, ['--credentials', credentials]);
    t.regex(started.out(), /echosms\s+http:\/\/127\.0\.0\.1:\d+\/webhooks\/echosms\/webhook/);
    await smsRoundTrip(t, started.url, platform);
  });
}

test.serial("the example package's own tests pass against the installed packages (node:test)", async (t) => {
  const files = readdirSync(path.join(app, 'test')).filter((f) => f.endsWith('.test.js'));
  t.true(files.length > 0);
  const { stdout } = await run(process.execPath, ['--test', ...files.map((f) => path.join('test', f))], { cwd: app, timeout: 60_000 });
  t.regex(stdout, /# pass [1-9]/);
  t.regex(stdout, /# fail 0/);
});

test.serial('a TypeScript channel type-checks against the installed package (strict, NodeNext)', async (t) => {
  writeFileSync(
    path.join(app, 'my-channel.ts'),
    `import { InputChannel, UserMessage, credentialsSchema, secret, z, jsonBody, type Context, type OnNewMessage, type Router } from 'switchboard';
import { conformance } from 'switchboard/testing';
export class MyInput extends InputChannel {
  static override credentials = credentialsSchema({ token: secret(z.string()) });
  name(): string { return 'mine'; }
  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    router.post('/webhook', async (ctx: Context) => {
      const body = jsonBody(ctx);
      await onNewMessage.enqueue(new UserMessage({ text: String(body.text), senderId: 'u', inputChannel: this.name() }));
      ctx.body = 'ok';
    });
    return router;
  }
}
export const check: Promise<{ ok: boolean }> = conformance(MyInput, { credentials: { token: 't' }, throwOnFailure: false });
`,
  );
  const tsc = path.join(PACKAGE_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = await run(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', 'my-channel.ts'], { cwd: app }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? String(error), failed: true }));
  t.false('failed' in result, result.stdout);
});
