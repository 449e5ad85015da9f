// Credentials schemas: secret and verification keys, validation messages relative to the section, coercion of YAML
// and ${ENV} strings, the allow_unverified policy (DESIGN §7), and the documented keys.
import test from 'ava';
import { CredentialsError } from '#src/errors.js';
import {
  credentialsSchema,
  describeCredentials,
  keyMeta,
  parseCredentials,
  secret,
  secretKeys,
  verificationSecret,
  z,
  type CredentialsSchema,
} from '#src/schema.js';

const slack = credentialsSchema({
  slack_token: secret(z.string().min(1), 'bot token (xoxb-…)'),
  slack_signing_secret: verificationSecret('signing secret of the Slack app'),
  slack_channel: z.string().optional(),
  slack_retry_reason_header: z.string().optional(),
  use_threads: z.boolean().default(false),
  typing_indicator: z.boolean().default(true),
  retries: z.number().default(3),
  port: z.int().optional(),
  mode: z.enum(['events', 'socket']).default('events'),
  scopes: z.array(z.string()).optional(),
});

/** The CredentialsError a section gives; fails the test when it parses. */
function problem(t: import('ava').ExecutionContext, schema: CredentialsSchema | undefined, raw: unknown): CredentialsError {
  const error = t.throws(() => parseCredentials(schema, raw), { instanceOf: CredentialsError });
  return error as CredentialsError;
}

// ---------------------------------------------------------------------------------------------------------------------
// Valid sections

test('a valid section parses, with defaults applied and allow_unverified false', (t) => {
  const parsed = parseCredentials(slack, { slack_token: 'xoxb-1', slack_signing_secret: 'sig' });
  t.deepEqual(parsed.values, {
    slack_token: 'xoxb-1',
    slack_signing_secret: 'sig',
    use_threads: false,
    typing_indicator: true,
    retries: 3,
    mode: 'events',
    allow_unverified: false,
  });
  t.false(parsed.unverified);
  t.deepEqual(parsed.unknownKeys, []);
});

test('YAML and ${ENV} strings are coerced to what the key declares', (t) => {
  const parsed = parseCredentials(slack, {
    slack_token: 'xoxb-1',
    slack_signing_secret: 12345,
    use_threads: 'true',
    typing_indicator: 'off',
    retries: '5',
    port: ' 8080 ',
    slack_channel: 42,
    allow_unverified: 'no',
  });
  t.is(parsed.values.slack_signing_secret, '12345');
  t.is(parsed.values.use_threads, true);
  t.is(parsed.values.typing_indicator, false);
  t.is(parsed.values.retries, 5);
  t.is(parsed.values.port, 8080);
  t.is(parsed.values.slack_channel, '42');
  t.is(parsed.values.allow_unverified, false);
});

for (const [text, value] of [
  ['true', true],
  ['TRUE', true],
  ['yes', true],
  ['on', true],
  ['1', true],
  ['false', false],
  ['No', false],
  ['off', false],
  ['0', false],
  [' true ', true],
] as const) {
  test(`"${text}" is read as ${String(value)} for a boolean key`, (t) => {
    t.is(parseCredentials(slack, { slack_token: 't', slack_signing_secret: 's', use_threads: text }).values.use_threads, value);
  });
}

test('an empty or missing section is an empty mapping', (t) => {
  const rest = credentialsSchema({});
  for (const raw of [undefined, null, {}]) {
    const parsed = parseCredentials(rest, raw);
    t.deepEqual(parsed.values, { allow_unverified: false });
    t.false(parsed.unverified);
  }
  t.deepEqual(parseCredentials(undefined, { a: 1 }).unknownKeys, ['a']);
});

test('unknown keys are reported, the host keys channel and allow_unverified are not', (t) => {
  const parsed = parseCredentials(slack, { slack_token: 't', slack_signing_secret: 's', channel: 'slack', allow_unverified: false, slack_tokn: 'typo', webhook_url: 'x' });
  t.deepEqual(parsed.unknownKeys, ['slack_tokn', 'webhook_url']);
  t.false('slack_tokn' in parsed.values);
  t.false('channel' in parsed.values);
});

test('an empty YAML value (null) for an optional key is as if it were absent', (t) => {
  const parsed = parseCredentials(slack, { slack_token: 't', slack_signing_secret: 's', slack_channel: null, use_threads: null });
  t.is(parsed.values.slack_channel, undefined);
  t.is(parsed.values.use_threads, false, 'the default applies');
});

test('a key that accepts null keeps it', (t) => {
  const schema = credentialsSchema({ proxy: z.string().nullable().optional() });
  t.is(parseCredentials(schema, { proxy: null }).values.proxy, null);
});

// ---------------------------------------------------------------------------------------------------------------------
// Messages

test('a missing required key is named', (t) => {
  const error = problem(t, slack, { slack_signing_secret: 's' });
  t.is(error.message, 'missing "slack_token"');
  t.is(error.key, 'slack_token');
});

test('an empty YAML value (null) for a required key is reported as missing', (t) => {
  const error = problem(t, slack, { slack_token: null, slack_signing_secret: 's' });
  t.is(error.message, 'missing "slack_token"');
  t.is(error.key, 'slack_token');
});

test('a wrong type names the key, the expected type and what was given', (t) => {
  t.is(problem(t, slack, { slack_token: 't', slack_signing_secret: 's', retries: 'many' }).message, '"retries" must be a number (got string "many")');
  t.is(problem(t, slack, { slack_token: 't', slack_signing_secret: 's', use_threads: 'maybe' }).message, '"use_threads" must be true or false (got string "maybe")');
  t.is(problem(t, slack, { slack_token: 't', slack_signing_secret: 's', slack_channel: ['a'] }).message, '"slack_channel" must be a string (got a list)');
  t.is(problem(t, slack, { slack_token: 't', slack_signing_secret: 's', slack_channel: { a: 1 } }).message, '"slack_channel" must be a string (got a mapping)');
  t.is(problem(t, slack, { slack_token: 't', slack_signing_secret: 's', scopes: 'chat:write' }).message, '"scopes" must be a list (got string "chat:write")');
});

test('a problem inside a list names the path', (t) => {
  const error = problem(t, slack, { slack_token: 't', slack_signing_secret: 's', scopes: ['a', 5] });
  // What was given is the item at fault, not the whole list.
  t.is(error.message, '"scopes.1" must be a string (got number 5)');
  t.is(error.key, 'scopes');
});

test('a missing key inside a mapping is named by its path', (t) => {
  const schema = credentialsSchema({ auth: z.object({ user: z.string(), password: secret(z.string()) }) });
  const error = problem(t, schema, { auth: { user: 'me' } });
  t.is(error.message, 'missing "auth.password"');
  t.is(error.key, 'auth');
});

test('other problems name the key with the validator message', (t) => {
  const error = problem(t, slack, { slack_token: 't', slack_signing_secret: 's', mode: 'webhook' });
  t.regex(error.message, /^"mode": /);
  t.is(error.key, 'mode');
});

test('a schema\'s own message follows the key path', (t) => {
  const schema = credentialsSchema({ name: z.string().refine((value) => value !== 'bot', 'is reserved') });
  const error = problem(t, schema, { name: 'bot' });
  t.is(error.message, '"name": is reserved');
  t.is(error.key, 'name');
});

test('several problems are reported together; the key is the first one', (t) => {
  const error = problem(t, slack, { slack_signing_secret: 's', retries: 'x' });
  t.true(error.message.includes('missing "slack_token"'));
  t.true(error.message.includes('"retries" must be a number'));
  t.true(error.message.includes('; '));
  t.is(error.key, 'slack_token');
});

test('the value of a secret key is never shown in a message', (t) => {
  const schema = credentialsSchema({
    token: secret(z.string().startsWith('xoxb-')),
    pin: secret(z.string()),
  });
  const wrong = problem(t, schema, { token: 'xoxp-TOPSECRETVALUE', pin: 'ok' });
  t.false(wrong.message.includes('TOPSECRETVALUE'));
  t.regex(wrong.message, /^"token"/);
  const typed = problem(t, schema, { token: 'xoxb-1', pin: { value: 'TOPSECRETVALUE' } });
  t.is(typed.message, '"pin" must be a string (got object)');
  const listed = problem(t, schema, { token: 'xoxb-1', pin: ['TOPSECRETVALUE'] });
  t.false(listed.message.includes('TOPSECRETVALUE'));
});

test('a long value is cut in the message', (t) => {
  const error = problem(t, slack, { slack_token: 't', slack_signing_secret: 's', retries: 'x'.repeat(200) });
  t.true(error.message.length < 120, error.message);
});

test('a section that is not a mapping is rejected', (t) => {
  t.is(problem(t, slack, ['a']).message, 'the section must be a mapping of keys to values, got a list');
  t.is(problem(t, slack, 'token').message, 'the section must be a mapping of keys to values, got string "token"');
  t.is(problem(t, slack, 5).message, 'the section must be a mapping of keys to values, got number 5');
});

// ---------------------------------------------------------------------------------------------------------------------
// allow_unverified

test('a missing verification secret stops the channel, saying how to allow it', (t) => {
  const error = problem(t, slack, { slack_token: 't' });
  t.is(error.key, 'slack_signing_secret');
  t.true(error.message.startsWith('missing "slack_signing_secret"'));
  t.true(error.message.includes('allow_unverified: true'));
});

test('an empty verification secret (an unset ${VAR:-}) counts as missing', (t) => {
  const error = problem(t, slack, { slack_token: 't', slack_signing_secret: '' });
  t.is(error.key, 'slack_signing_secret');
  t.true(error.message.startsWith('missing "slack_signing_secret"'), error.message);
  t.true(error.message.includes('allow_unverified'));
  const nulled = problem(t, slack, { slack_token: 't', slack_signing_secret: null });
  t.true(nulled.message.startsWith('missing "slack_signing_secret"'), nulled.message);
});

test('allow_unverified: true lets the channel start without its verification secret, and says so', (t) => {
  for (const allow of [true, 'true', 'yes']) {
    const parsed = parseCredentials(slack, { slack_token: 't', allow_unverified: allow });
    t.true(parsed.unverified);
    t.true(parsed.values.allow_unverified);
    t.is(parsed.values.slack_signing_secret, undefined);
  }
  for (const empty of ['', null]) {
    const parsed = parseCredentials(slack, { slack_token: 't', slack_signing_secret: empty, allow_unverified: true });
    t.true(parsed.unverified, `with slack_signing_secret: ${JSON.stringify(empty)}`);
  }
});

test('allow_unverified does not excuse other missing keys', (t) => {
  t.is(problem(t, slack, { allow_unverified: true }).message, 'missing "slack_token"');
});

test('allow_unverified must be a boolean; an empty value is as if absent', (t) => {
  const error = problem(t, slack, { slack_token: 't', slack_signing_secret: 's', allow_unverified: 'sometimes' });
  t.is(error.key, 'allow_unverified');
  t.is(error.message, '"allow_unverified" must be true or false (got string "sometimes")');
  const parsed = parseCredentials(slack, { slack_token: 't', slack_signing_secret: 's', allow_unverified: null });
  t.false(parsed.values.allow_unverified);
  t.false(parsed.unverified);
});

test('a channel with no verification key is unverified only when the section says so', (t) => {
  const rest = credentialsSchema({});
  t.false(parseCredentials(rest, {}).unverified);
  t.true(parseCredentials(rest, { allow_unverified: true }).unverified);
});

// ---------------------------------------------------------------------------------------------------------------------
// Metadata and documentation

test('secret and verificationSecret mark their keys; secretKeys lists them in order', (t) => {
  t.deepEqual(secretKeys(slack), ['slack_token', 'slack_signing_secret']);
  t.deepEqual(secretKeys(undefined), []);
  t.like(keyMeta(slack.shape.slack_token), { secret: true, type: 'string', optional: false, description: 'bot token (xoxb-…)' });
  t.like(keyMeta(slack.shape.slack_signing_secret), { secret: true, verification: true, optional: true, type: 'string' });
  t.like(keyMeta(slack.shape.slack_channel), { secret: undefined, optional: true, type: 'string' });
});

test('metadata survives wrappers, the outermost declaration winning', (t) => {
  const key = secret(z.string(), 'inner').optional().meta({ description: 'outer' });
  t.like(keyMeta(key), { secret: true, description: 'outer', optional: true, type: 'string' });
  t.like(keyMeta(secret(z.string()).transform((v) => v.trim())), { secret: true, type: 'string' });
  t.like(keyMeta(z.number().default(() => 7)), { optional: true, default: 7, type: 'number' });
});

test('secret() does not change what the key accepts', (t) => {
  const schema = credentialsSchema({ n: secret(z.number()) });
  t.is(parseCredentials(schema, { n: '3' }).values.n, 3);
  t.is(problem(t, schema, {}).message, 'missing "n"');
});

test('describeCredentials documents each key in declaration order', (t) => {
  const docs = describeCredentials(slack);
  t.deepEqual(
    docs.map((d) => d.key),
    ['slack_token', 'slack_signing_secret', 'slack_channel', 'slack_retry_reason_header', 'use_threads', 'typing_indicator', 'retries', 'port', 'mode', 'scopes'],
  );
  t.deepEqual(docs[0], { key: 'slack_token', type: 'string', required: true, secret: true, verification: false, description: 'bot token (xoxb-…)' });
  t.deepEqual(docs[1], { key: 'slack_signing_secret', type: 'string', required: false, secret: true, verification: true, description: 'signing secret of the Slack app' });
  t.deepEqual(docs[2], { key: 'slack_channel', type: 'string', required: false, secret: false, verification: false });
  t.deepEqual(docs[4], { key: 'use_threads', type: 'boolean', required: false, secret: false, verification: false, default: false });
  t.like(docs[6], { key: 'retries', default: 3 });
  t.like(docs[8], { key: 'mode', type: 'enum', default: 'events' });
  t.like(docs[9], { key: 'scopes', type: 'array', required: false });
  t.deepEqual(describeCredentials(undefined), []);
});
