// The host's logger: levels, redaction of credential keys (always, and per channel from its schema's secret keys),
// and maskSecrets for values inside texts (URLs, error messages).
import test from 'ava';
import { captureLogs as capture } from './harness.js';
import { channelLogger, createLogger, maskSecrets, silentLogger } from '#src/logger.js';


test('createLogger writes JSON lines at its level to the destination, without pid or hostname', (t) => {
  const { logger, lines } = capture('info');
  logger.debug('hidden');
  logger.info({ a: 1 }, 'shown');
  logger.warn('warned');
  const logged = lines();
  t.is(logged.length, 2);
  t.like(logged[0], { level: 30, a: 1, msg: 'shown' });
  t.like(logged[1], { level: 40, msg: 'warned' });
  t.false('pid' in logged[0]!);
  t.false('hostname' in logged[0]!);
  t.is(typeof logged[0]!.time, 'number');
});

test('credential headers, credentials and passwords are always redacted', (t) => {
  const { logger, text, lines } = capture();
  logger.info(
    {
      req: { headers: { authorization: 'Bearer SECRET-A', cookie: 'sid=SECRET-B', host: 'x' } },
      headers: { authorization: 'Basic SECRET-C', 'x-auth-token': 'SECRET-D', accept: 'json' },
      credentials: { slack_token: 'SECRET-E' },
      password: 'SECRET-F',
      user: { password: 'SECRET-G', name: 'bob' },
    },
    'request',
  );
  for (const secret of ['SECRET-A', 'SECRET-B', 'SECRET-C', 'SECRET-D', 'SECRET-E', 'SECRET-F', 'SECRET-G']) t.false(text().includes(secret), secret);
  const [line] = lines();
  t.deepEqual(line?.req, { headers: { authorization: '[redacted]', cookie: '[redacted]', host: 'x' } });
  t.deepEqual(line?.headers, { authorization: '[redacted]', 'x-auth-token': '[redacted]', accept: 'json' });
  t.is(line?.credentials, '[redacted]');
  t.deepEqual(line?.user, { password: '[redacted]', name: 'bob' });
});

test('a channel logger is bound to its channel and redacts its secret keys at the top and one level down', (t) => {
  const { logger, text, lines } = capture();
  const log = channelLogger(logger, 'slack', ['slack_token', 'slack_signing_secret']);
  log.warn({ slack_token: 'xoxb-TOP', config: { slack_signing_secret: 'SIG-NESTED', slack_channel: 'general' } }, 'configured');
  t.false(text().includes('xoxb-TOP'));
  t.false(text().includes('SIG-NESTED'));
  const [line] = lines();
  t.like(line, { channel: 'slack', slack_token: '[redacted]', config: { slack_signing_secret: '[redacted]', slack_channel: 'general' }, msg: 'configured' });
});

test('a channel logger still redacts what the host always redacts', (t) => {
  const { logger, text } = capture();
  const log = channelLogger(logger, 'telegram', ['access_token']);
  log.info({ headers: { authorization: 'Bearer HOST-SECRET' }, credentials: { access_token: 'x' }, password: 'PW-SECRET' }, 'x');
  t.false(text().includes('HOST-SECRET'));
  t.false(text().includes('PW-SECRET'));
});

test('secret keys that are not identifiers are redacted too', (t) => {
  const { logger, text, lines } = capture();
  const log = channelLogger(logger, 'custom', ['api-key', 'x.token']);
  log.info({ 'api-key': 'DASHED-TOP', nested: { 'api-key': 'DASHED-NESTED' }, 'x.token': 'DOTTED' }, 'x');
  for (const secret of ['DASHED-TOP', 'DASHED-NESTED', 'DOTTED']) t.false(text().includes(secret), secret);
  t.is(lines()[0]?.['api-key'], '[redacted]');
});

test('a secret key that the host already redacts does not break the channel logger', (t) => {
  const { logger, text } = capture();
  const log = channelLogger(logger, 'rocketchat', ['password', 'credentials']);
  log.info({ password: 'PW', user: { password: 'PW2' } }, 'x');
  t.false(text().includes('PW'));
});

test('child loggers of a channel logger keep its redaction and its channel', (t) => {
  const { logger, text, lines } = capture();
  const log = channelLogger(logger, 'facebook', ['page_access_token']).child({ sender: 'u1' });
  log.error({ page_access_token: 'EAAG-SECRET' }, 'x');
  t.false(text().includes('EAAG-SECRET'));
  t.like(lines()[0], { channel: 'facebook', sender: 'u1' });
});

test('the parent logger is not changed by a channel logger', (t) => {
  const { logger, lines } = capture();
  channelLogger(logger, 'slack', ['slack_token']);
  logger.info({ slack_token: 'visible-on-host' }, 'x');
  // The host logger only redacts what it always redacts: a channel's keys are the channel logger's business.
  t.is(lines()[0]?.slack_token, 'visible-on-host');
  t.false('channel' in lines()[0]!);
});

test('the silent logger logs nothing and has children', (t) => {
  t.false(silentLogger.isLevelEnabled('error'));
  t.notThrows(() => silentLogger.child({ a: 1 }).error('nothing'));
});

// ---------------------------------------------------------------------------------------------------------------------
// maskSecrets

test('maskSecrets replaces every occurrence of each secret', (t) => {
  t.is(maskSecrets('https://api.telegram.org/bot123:ABC/send?x=123:ABC', ['123:ABC']), 'https://api.telegram.org/bot[redacted]/send?x=[redacted]');
  t.is(maskSecrets('a tok1 b tok2 c tok1', ['tok1', 'tok2']), 'a [redacted] b [redacted] c [redacted]');
  t.is(maskSecrets('nothing here', ['secret']), 'nothing here');
  t.is(maskSecrets('', ['secret']), '');
});

test('maskSecrets ignores secrets shorter than 4 characters', (t) => {
  t.is(maskSecrets('a b abc', ['a', 'ab', 'abc', '']), 'a b abc');
});

test('maskSecrets masks the URL-encoded forms of a secret', (t) => {
  const secret = 'a/b+c=d e!';
  t.is(maskSecrets(`path/${encodeURIComponent(secret)}/x`, [secret]), 'path/[redacted]/x');
  t.is(maskSecrets(`?k=${new URLSearchParams({ k: secret }).toString().slice(2)}&z=1`, [secret]), '?k=[redacted]&z=1');
  t.is(maskSecrets(`raw ${secret} end`, [secret]), 'raw [redacted] end');
});

test('maskSecrets masks a secret whole when another secret is part of it', (t) => {
  // A short secret inside a longer one (a bot id inside its token) must not leave the rest of the longer one.
  t.is(maskSecrets('token 1234567:AAF-rest-of-token', ['1234567', '1234567:AAF-rest-of-token']), 'token [redacted]');
  t.is(maskSecrets('token 1234567:AAF-rest-of-token', ['1234567:AAF-rest-of-token', '1234567']), 'token [redacted]');
});

test('maskSecrets leaves special characters of a secret uninterpreted', (t) => {
  t.is(maskSecrets('x $&.*+?^${}()|[]\\ y', ['$&.*+?^${}()|[]\\']), 'x [redacted] y');
});
