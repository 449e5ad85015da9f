import test from 'ava';
import { ConfigError } from 'switchboard';
import { interpolateEnv, parseCredentialsText, readCredentialsFile } from '#src/credentials.js';
import { makeProject } from './fixtures.js';

const env = { SLACK_TOKEN: 'xoxb-from-env', EMPTY: '', PORT_NUMBER: '42' };

test('${VAR} and ${VAR:-default} are expanded from the environment', (t) => {
  const [section] = parseCredentialsText(
    [
      'slack:',
      '  slack_token: ${SLACK_TOKEN}',
      '  slack_channel: ${SLACK_CHANNEL:-C0123}',
      '  note: "prefix-${SLACK_TOKEN}-suffix"',
      '  empty_uses_default: ${EMPTY:-fallback}',
      '  number: ${PORT_NUMBER}',
      '  nested:',
      '    list: ["${SLACK_TOKEN}", plain]',
    ].join('\n'),
    'credentials.yml',
    env,
  );
  t.deepEqual(section!.values, {
    slack_token: 'xoxb-from-env',
    slack_channel: 'C0123',
    note: 'prefix-xoxb-from-env-suffix',
    empty_uses_default: 'fallback',
    number: '42',
    nested: { list: ['xoxb-from-env', 'plain'] },
  });
});

test('an unset variable without default names the file, channel, key and variable', (t) => {
  const error = t.throws(() => parseCredentialsText('slack:\n  slack_token: ${NOT_SET_ANYWHERE}\n', 'credentials.yml', env), { instanceOf: ConfigError });
  t.is(error!.message, 'credentials.yml: slack: "slack_token": environment variable NOT_SET_ANYWHERE is not set (use ${NOT_SET_ANYWHERE:-default} for a default)');
});

test('interpolateEnv leaves text without references alone', (t) => {
  t.is(interpolateEnv('no $refs {here}', env, 'x'), 'no $refs {here}');
  t.is(interpolateEnv('$SLACK_TOKEN', env, 'x'), '$SLACK_TOKEN');
});

test('broken YAML reports file, line and column', (t) => {
  const error = t.throws(() => parseCredentialsText('rest:\nslack:\n  slack_token: "unterminated\n', 'credentials.yml', env), { instanceOf: ConfigError });
  t.regex(error!.message, /^credentials\.yml:4:1: invalid YAML: /);
  const indent = t.throws(() => parseCredentialsText('slack:\n  a: 1\n   b: 2\n', 'credentials.yml', env));
  t.regex(indent!.message, /^credentials\.yml:3:\d+: invalid YAML: bad indentation/);
});

test('the top level must be a mapping', (t) => {
  const error = t.throws(() => parseCredentialsText('- rest\n- slack\n', 'credentials.yml', env));
  t.is(error!.message, 'credentials.yml: expected a mapping of channel names to their credentials, got a list');
});

test('a section must be a mapping or empty', (t) => {
  const error = t.throws(() => parseCredentialsText('slack: yes-please\n', 'creds.yml', env));
  t.is(error!.message, 'creds.yml: slack: the section must be a mapping of keys to values (or empty), got string');
  t.deepEqual(parseCredentialsText('rest:\n', 'c.yml', env), [{ key: 'rest', spec: 'rest', aliased: false, values: {}, source: 'c.yml' }]);
});

test('"channel:" names the class and the key becomes the prefix', (t) => {
  const sections = parseCredentialsText('support-slack:\n  channel: slack\n  slack_token: t\n', 'credentials.yml', env);
  t.deepEqual(sections, [{ key: 'support-slack', spec: 'slack', aliased: true, values: { slack_token: 't' }, source: 'credentials.yml' }]);
  const error = t.throws(() => parseCredentialsText('x:\n  channel: 3\n', 'credentials.yml', env));
  t.is(error!.message, 'credentials.yml: x: "channel" must be a channel spec such as slack or mypackage.MyIO');
});

test('an empty file has no channels; a missing file is named', (t) => {
  t.deepEqual(parseCredentialsText('', 'credentials.yml', env), []);
  t.deepEqual(parseCredentialsText('# only a comment\n', 'credentials.yml', env), []);
  const error = t.throws(() => readCredentialsFile('does-not-exist.yml', env, '/tmp'), { instanceOf: ConfigError });
  t.is(error!.message, 'does-not-exist.yml: cannot read the credentials file (no such file)');
});

test('readCredentialsFile reads relative to the working directory', (t) => {
  const project = makeProject();
  t.teardown(() => project.remove());
  project.write('conf/credentials.yml', 'rest:\ncallback:\n  url: ${CB_URL:-http://localhost:9/x}\n');
  const sections = readCredentialsFile('conf/credentials.yml', {}, project.dir);
  t.deepEqual(sections.map((s) => [s.key, s.values]), [['rest', {}], ['callback', { url: 'http://localhost:9/x' }]]);
});
