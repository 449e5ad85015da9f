import test from 'ava';
import { ConfigError } from 'switchboard';
import { loadChannelClass, loadChannels, createChannel } from '#src/loader.js';
import { parseCredentialsText } from '#src/credentials.js';
import { echoChannelSource, makeProject, type Project } from './fixtures.js';
import { startServer, ScriptedBot } from './harness.js';

let project: Project;

test.before(() => {
  project = makeProject();
  project.write('my-io.js', echoChannelSource('MyIO', 'myio'));
  project.write('lib/named-io.js', echoChannelSource('NamedIO', 'named', 'named') + echoChannelSource('OtherIO', 'other', 'named').replace(/^import.*\n/, ''));
  project.write('single.mjs', echoChannelSource('SingleIO', 'single', 'named') + 'export const helper = 1;\n');
  project.write('not-channel.js', 'export const x = 1;\nexport function y() {}\n');
  project.write('throws.js', 'throw new Error("module blew up");\n');
  project.write(
    'duck.js',
    `// A channel that does not extend InputChannel: a class with name() and router(), built with new.
import { Router } from 'switchboard';
export default class Duck {
  constructor(credentials) { this.credentials = credentials; }
  name() { return 'duck'; }
  router() { const r = new Router(); r.get('/', (ctx) => { ctx.body = { status: 'ok', quack: this.credentials.sound ?? null }; }); return r; }
}
`,
  );
  project.write(
    'cjs-io.cjs',
    `class CjsIO { static fromCredentials() { return new CjsIO(); } name() { return 'cjs'; } router() { return undefined; } }
module.exports = { CjsIO };
`,
  );
  project.write('node_modules/mypackage/package.json', JSON.stringify({ name: 'mypackage', type: 'module', exports: { '.': { import: './dist/main.js' } } }));
  project.write('node_modules/mypackage/dist/main.js', echoChannelSource('MyIO', 'mypkg', 'named') + 'export default MyIO;\n');
  project.write('node_modules/@acme/pkg/package.json', JSON.stringify({ name: '@acme/pkg', type: 'module', main: 'index.js' }));
  project.write('node_modules/@acme/pkg/index.js', echoChannelSource('ScopedIO', 'scoped', 'named'));
  project.write('node_modules/chan.io/package.json', JSON.stringify({ name: 'chan.io', type: 'module', exports: './index.js' }));
  project.write('node_modules/chan.io/index.js', echoChannelSource('ChanIO', 'chanio', 'named') + 'export default ChanIO;\n');
  project.write(
    'needs-key.js',
    `import { InputChannel, credentialsSchema, secret, verificationSecret, z } from 'switchboard';
export default class NeedsKey extends InputChannel {
  static credentials = credentialsSchema({ api_token: secret(z.string()), signing_secret: verificationSecret(), retries: z.number().default(2) });
  name() { return 'needskey'; }
  router() { return this.newRouter(); }
}
`,
  );
});

test.after.always(() => project?.remove());

const forms: Array<[string, string, string]> = [
  ['a built-in name', 'rest', 'RestInput'],
  ['a module path with extension', './my-io.js', 'MyIO'],
  ['a module path without extension', './my-io', 'MyIO'],
  ['a module path with .ClassName', './lib/named-io.NamedIO', 'NamedIO'],
  ['a module path with extension and .ClassName', './lib/named-io.js.OtherIO', 'OtherIO'],
  ['a module whose single channel class is a named export', './single.mjs', 'SingleIO'],
  ['a plain class that does not extend InputChannel', './duck.js', 'Duck'],
  ['a CommonJS module with .ClassName', './cjs-io.cjs.CjsIO', 'CjsIO'],
  ['package.ClassName (ESM-only exports map)', 'mypackage.MyIO', 'MyIO'],
  ['a package name alone (default export)', 'mypackage', 'MyIO'],
  ['@scope/pkg.ClassName', '@acme/pkg.ScopedIO', 'ScopedIO'],
  ['a package name containing a dot', 'chan.io', 'ChanIO'],
  ['a dotted package name with .ClassName', 'chan.io.ChanIO', 'ChanIO'],
];

for (const [label, spec, className] of forms) {
  test(`loader: ${label} (${spec})`, async (t) => {
    const ChannelClass = await loadChannelClass(spec, project.dir);
    t.is(ChannelClass.name, className);
  });
}

test('loader: an absolute path works too', async (t) => {
  const ChannelClass = await loadChannelClass(`${project.dir}/my-io.js`, '/');
  t.is(ChannelClass.name, 'MyIO');
});

const failures: Array<[string, string, RegExp]> = [
  ['a missing file', './nope.js', /^cannot load channel "\.\/nope\.js": tried module "\.\/nope\.js": not found \(no file .*nope\.js\[\.js\|\.mjs\|\.cjs\]\)\.$/],
  ['a missing export', 'mypackage.Nope', /tried export "Nope" of module "mypackage": found at .*main\.js, but it has no export "Nope" \(it exports: MyIO, default\)/],
  ['a module without a channel class', './not-channel.js', /found at .*not-channel\.js, but it has no default export and no InputChannel class \(it exports: x, y\)/],
  ['an export that is not a channel class', './not-channel.y', /its export "y" is not an InputChannel class/],
  ['several channel classes and no name', './lib/named-io.js', /it exports several channel classes \(NamedIO, OtherIO\); name one, as in SPEC\.ClassName/],
  ['a module that throws on import', './throws.js', /importing it failed: module blew up/],
  ['an unknown package', 'nosuchpkg', /tried module "nosuchpkg": not found \(no such installed package\)\. It is not a built-in channel either \(built-ins: .*rest.*\)\./],
];

for (const [label, spec, message] of failures) {
  test(`loader fails clearly: ${label} (${spec})`, async (t) => {
    const error = await t.throwsAsync(loadChannelClass(spec, project.dir), { instanceOf: ConfigError });
    t.regex(error!.message, message);
  });
}

test('a loaded plain-JS channel serves its webhook under /webhooks/<name>/', async (t) => {
  const channels = await loadChannels([], ['./my-io.js'], { cwd: project.dir });
  const { request } = await startServer(t, channels, { bot: new ScriptedBot((m) => [{ text: `echo: ${m.text}` }]) });
  t.is((await request('/webhooks/myio/')).status, 200);
  const response = await request('/webhooks/myio/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hi","from":"u1"}' });
  t.deepEqual(response.json, { channel: 'MyIO', answers: [{ recipient_id: 'u1', text: 'echo: hi' }] });
});

test('"channel: SPEC" mounts one class under several prefixes', async (t) => {
  const sections = parseCredentialsText(
    `support:\n  channel: ./my-io.js\nsales:\n  channel: mypackage.MyIO\nrest:\n`,
    'credentials.yml',
  );
  const channels = await loadChannels(sections, [], { cwd: project.dir });
  t.deepEqual(channels.map((c) => c.name()), ['support', 'sales', 'rest']);
  const { request } = await startServer(t, channels, { bot: new ScriptedBot((m) => [{ text: m.inputChannel }]) });
  const support = await request('/webhooks/support/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"a"}' });
  t.deepEqual(support.json, { channel: 'MyIO', answers: [{ recipient_id: 'someone', text: 'support' }] });
  const sales = await request('/webhooks/sales/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"a"}' });
  t.deepEqual(sales.json, { channel: 'MyIO', answers: [{ recipient_id: 'someone', text: 'sales' }] });
});

test('two channels claiming one prefix is a startup error naming both', async (t) => {
  const sections = parseCredentialsText(`myio:\n  channel: mypackage\n`, 'credentials.yml');
  const error = await t.throwsAsync(loadChannels(sections, ['./my-io.js'], { cwd: project.dir }), { instanceOf: ConfigError });
  t.is(error!.message, 'two channels claim /webhooks/myio/: "myio" (credentials.yml) and "./my-io.js" (--channel); give one a key of its own with "channel: SPEC"');
});

test('a --channel spec that a section already names is loaded once, with the section', async (t) => {
  const sections = parseCredentialsText(`./duck.js:\n  sound: quack\n`, 'credentials.yml');
  const channels = await loadChannels(sections, ['./duck.js'], { cwd: project.dir });
  t.is(channels.length, 1);
  const { request } = await startServer(t, channels);
  t.deepEqual((await request('/webhooks/duck/')).json, { status: 'ok', quack: 'quack' });
});

test('a missing credential key is reported as file: channel: missing "key"', async (t) => {
  const sections = parseCredentialsText(`./needs-key.js:\n  signing_secret: s\n`, 'credentials.yml');
  const error = await t.throwsAsync(loadChannels(sections, [], { cwd: project.dir }), { instanceOf: ConfigError });
  t.is(error!.message, 'credentials.yml: ./needs-key.js: missing "api_token"');
});

test('a mistyped credential key is reported with the expected type, never the secret value', async (t) => {
  const sections = parseCredentialsText(`nk:\n  channel: ./needs-key.js\n  api_token: [1]\n  signing_secret: s\n  retries: lots\n`, 'credentials.yml');
  const error = await t.throwsAsync(loadChannels(sections, [], { cwd: project.dir }), { instanceOf: ConfigError });
  t.is(error!.message, 'credentials.yml: nk: "api_token" must be a string (got object); "retries" must be a number (got string "lots")');
});

test('verification fails closed: no signing secret, no start, unless allow_unverified', async (t) => {
  const closed = parseCredentialsText(`nk:\n  channel: ./needs-key.js\n  api_token: t\n`, 'credentials.yml');
  const error = await t.throwsAsync(loadChannels(closed, [], { cwd: project.dir }));
  t.is(
    error!.message,
    'credentials.yml: nk: missing "signing_secret", needed to verify that requests come from the platform (or set allow_unverified: true to accept unverified requests)',
  );
  const open = parseCredentialsText(`nk:\n  channel: ./needs-key.js\n  api_token: t\n  allow_unverified: true\n  typo_key: 1\n`, 'credentials.yml');
  const warnings: string[] = [];
  const logger = { warn: (_o: object, message: string) => warnings.push(message) } as never;
  const [channel] = await loadChannels(open, [], { cwd: project.dir, logger });
  t.true(channel!.unverified);
  t.deepEqual(warnings, [
    'credentials.yml: nk: unknown key "typo_key" is ignored',
    'credentials.yml: nk: allow_unverified is set: requests to /webhooks/nk/ are NOT verified',
  ]);
});

test('an invalid prefix from name() is refused', async (t) => {
  project.write('bad-name.js', echoChannelSource('BadName', 'has space'));
  const error = await t.throwsAsync(createChannel({ key: './bad-name.js', spec: './bad-name.js', aliased: false, values: {}, source: '--channel' }, project.dir));
  t.regex(error!.message, /name\(\) must be a URL-safe prefix.*"has space"/);
});
