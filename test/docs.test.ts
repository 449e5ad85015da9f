import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { renderCredentialsExample } from '#src/tools/credentials-example.js';
import { parseCredentialsText } from '#src/credentials.js';
import { loadChannels } from '#src/loader.js';
import { PACKAGE_ROOT } from './fixtures.js';

test('credentials.example.yml is generated from the channel schemas and is current (npm run docs:credentials)', async (t) => {
  const committed = readFileSync(path.join(PACKAGE_ROOT, 'credentials.example.yml'), 'utf8');
  t.is(committed, await renderCredentialsExample());
});

test('credentials.example.yml documents every built-in channel and loads as it is', async (t) => {
  const text = readFileSync(path.join(PACKAGE_ROOT, 'credentials.example.yml'), 'utf8');
  for (const name of ['rest', 'callback']) t.regex(text, new RegExp(`^(# )?${name}:`, 'm'));
  const channels = await loadChannels(parseCredentialsText(text, 'credentials.example.yml', {}), []);
  t.deepEqual(channels.map((c) => c.name()), ['rest']);
});

test('the README documents the quick start and the test command', (t) => {
  const readme = readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8');
  t.regex(readme, /npm install && npm start/);
  t.regex(readme, /npm test/);
  t.regex(readme, /curl .*\/webhooks\/rest\/webhook/);
});

test("the README's channel example type-checks against the public API (strict, NodeNext)", async (t) => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { writeFileSync } = await import('node:fs');
  const { makeProject } = await import('./fixtures.js');
  const readme = readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Creating a new channel'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  t.truthy(code, 'a ts example in "Creating a new channel"');
  const project = makeProject();
  t.teardown(() => project.remove());
  writeFileSync(path.join(project.dir, 'package.json'), '{"type":"module"}');
  project.write('echo-sms.ts', code!);
  const tsc = path.join(PACKAGE_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(PACKAGE_ROOT, 'node_modules', '@types'), '--skipLibCheck', 'echo-sms.ts'];
  const result = await promisify(execFile)(process.execPath, args, { cwd: project.dir }).then(
    () => '',
    (error: { stdout?: string }) => error.stdout ?? String(error),
  );
  t.is(result, '');
});
