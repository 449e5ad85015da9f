/**
 * Microsoft's own SDK as the referee of the Bot Framework channel's token check: each request, minted as the Bot
 * Connector mints it (botframework.tokens.ts), goes to Switchboard over real HTTP and to `botframework-connector`'s
 * `JwtTokenValidation.authenticateRequest` (what every JS bot built on the Bot Framework SDK runs), both reading the
 * same keys from one local OpenID endpoint. They must agree, case by case; the few places where Switchboard differs on
 * purpose say why. A token only our own verifier accepts would be a fixture that lies.
 */
import test from 'ava';
import nock from 'nock';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { ChannelValidation, JwtTokenValidation, SimpleCredentialProvider } from 'botframework-connector';
import { startTestHost, type TestHost } from 'switchboard/testing';
import BotFrameworkInput from '../../channels/botframework/index.js';
import { connectorKey, connectorToken, type ConnectorClaims, type ConnectorHeader, type ConnectorKey } from './botframework.tokens.js';

const APP_ID = '8b0f7e2c-3d4a-4a5b-9c6d-7e8f90a1b2c3';
const APP_PASSWORD = 'Qx8Q~not.a.real.secret_7yT3dLkW2pZr';
const SERVICE_URL = 'https://smba.trafficmanager.net/amer/';
const OTHER_SERVICE_URL = 'https://smba.trafficmanager.net/emea/';

// The keys, as login.botframework.com lists them: with endorsements, with an empty list, with none.
const endorsed = connectorKey('key-endorsed');
const openKey = connectorKey('key-empty-endorsements', []);
const plainKey = connectorKey('key-no-endorsements', null);
const unlisted = connectorKey('key-unlisted');

let keyServer: Server;
let host: TestHost;
const sdkConsole: unknown[][] = [];
const consoleError = console.error;

test.before(async () => {
  // Neither side may reach the network: only the local key server and the local host answer.
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  keyServer = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    if (req.url === '/v1/.well-known/openidconfiguration') {
      res.end(JSON.stringify({ issuer: 'https://api.botframework.com', jwks_uri: `${base}/v1/.well-known/keys`, id_token_signing_alg_values_supported: ['RS256'], token_endpoint_auth_methods_supported: ['private_key_jwt'] }));
    } else {
      res.end(JSON.stringify({ keys: [endorsed.jwk, openKey.jwk, plainKey.jwk] }));
    }
  });
  await new Promise<void>((resolve) => keyServer.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}`;
  // The SDK's override of the public cloud's metadata URL (AuthenticationConstants.ToBotFromChannelOpenIdMetadataUrl).
  ChannelValidation.OpenIdMetadataEndpoint = `${base}/v1/.well-known/openidconfiguration`;
  // The SDK writes every refusal to console.error; kept here rather than in the test output.
  console.error = (...args: unknown[]) => void sdkConsole.push(args);
  host = await startTestHost(BotFrameworkInput.fromCredentials({ app_id: APP_ID, app_password: APP_PASSWORD, openid_metadata: ChannelValidation.OpenIdMetadataEndpoint }));
});

test.after.always(async () => {
  console.error = consoleError;
  await host?.close();
  await new Promise<void>((resolve) => (keyServer ? keyServer.close(() => resolve()) : resolve()));
  nock.enableNetConnect();
});

let activityCount = 0;

/** A Teams message activity; a fresh id each time, so none is taken for a redelivery. */
function activity(fields: Record<string, unknown> = {}): Record<string, unknown> {
  activityCount += 1;
  return {
    type: 'message',
    id: `1732536000${String(activityCount).padStart(3, '0')}`,
    timestamp: new Date().toISOString(),
    serviceUrl: SERVICE_URL,
    channelId: 'msteams',
    from: { id: '29:1XJKJMvc5GBtc2JwZq0oj8tHZmzrQgFmB39ATiQWA85gQtHieVkKilBZ9XHoq9j7Zaqt7CZ', name: 'Megan Bowen' },
    conversation: { conversationType: 'personal', id: 'a:1dAm2tJcbL6nW5RoqY0Jc1_5Fz4UmM0Qp8Zq9cLk3eXnV' },
    recipient: { id: `28:${APP_ID}`, name: 'Switchboard' },
    text: 'hello',
    ...fields,
  };
}

type Verdict = 'accepted' | 'refused';

interface RefereeCase {
  label: string;
  /** The Authorization header (`undefined`: none); by default a Bearer token of `claims` signed by `key`. */
  authorization?: () => Promise<string | undefined>;
  key?: ConnectorKey;
  claims?: Partial<ConnectorClaims>;
  header?: ConnectorHeader;
  activity?: Record<string, unknown>;
  /** What both must do... */
  expected: Verdict;
  /** ...and, when refused, why Microsoft's SDK refused (its error message), so it cannot refuse for another reason. */
  microsoftSays?: RegExp;
  /** Where Switchboard differs on purpose: Microsoft's verdict, and why we differ. */
  microsoft?: { verdict: Verdict; says?: RegExp; why: string };
}

const bearer = (key: ConnectorKey, claims: Partial<ConnectorClaims> = {}, header: ConnectorHeader = {}) => async () =>
  `Bearer ${await connectorToken(key, { aud: APP_ID, serviceurl: SERVICE_URL, ...claims }, header)}`;

const cases: RefereeCase[] = [
  // --- both accept
  { label: 'a token as the Bot Connector mints it (RS256)', expected: 'accepted' },
  { label: 'an RS384 token', header: { alg: 'RS384' }, expected: 'accepted' },
  { label: 'an RS512 token', header: { alg: 'RS512' }, expected: 'accepted' },
  { label: 'a token expired 2 minutes ago (within the 5 minutes of skew)', claims: { nbf: -3600, exp: -120 }, expected: 'accepted' },
  { label: 'a token valid in 2 minutes (within the skew)', claims: { nbf: 120 }, expected: 'accepted' },
  { label: 'a key endorsed for the activity channelId (webchat)', activity: activity({ channelId: 'webchat' }), expected: 'accepted' },
  { label: 'a key with an empty endorsements list, any channel', key: openKey, activity: activity({ channelId: 'skype' }), expected: 'accepted' },
  { label: 'a key without endorsements, any channel', key: plainKey, activity: activity({ channelId: 'skype' }), expected: 'accepted' },
  { label: 'an activity with an empty channelId asserts no endorsement', activity: activity({ channelId: '' }), expected: 'accepted' },
  { label: 'a claim the Bot Connector does not send (iat) changes nothing', claims: { extra: { iat: Math.floor(Date.now() / 1000) - 60 } }, expected: 'accepted' },

  // --- both refuse
  { label: 'a serviceurl claim that is not the activity serviceUrl', claims: { serviceurl: OTHER_SERVICE_URL }, expected: 'refused', microsoftSays: /ServiceUrl claim do not match/ },
  { label: "an activity serviceUrl that is not the token's", activity: activity({ serviceUrl: 'https://evil.example.com/' }), expected: 'refused', microsoftSays: /ServiceUrl claim do not match/ },
  { label: 'no serviceurl claim', claims: { serviceurl: undefined }, expected: 'refused', microsoftSays: /ServiceUrl claim do not match/ },
  { label: 'a right camel-case serviceUrl beside a wrong serviceurl', claims: { serviceurl: OTHER_SERVICE_URL, extra: { serviceUrl: SERVICE_URL } }, expected: 'refused', microsoftSays: /ServiceUrl claim do not match/ },
  { label: 'another audience (app id)', claims: { aud: 'another-bots-app-id' }, expected: 'refused', microsoftSays: /Invalid AppId passed on token: another-bots-app-id/ },
  { label: 'expired 10 minutes ago', claims: { nbf: -3600, exp: -600 }, expected: 'refused', microsoftSays: /token has expired/ },
  { label: 'not valid for 10 more minutes', claims: { nbf: 600 }, expected: 'refused', microsoftSays: /jwt not active/ },
  { label: "another cloud's issuer (US Government, api.botframework.us)", claims: { iss: 'https://api.botframework.us' }, expected: 'refused', microsoftSays: /Is not authenticated/ },
  { label: 'a key not endorsed for the activity channelId', activity: activity({ channelId: 'skype' }), expected: 'refused', microsoftSays: /Could not validate endorsement for key: key-endorsed/ },
  { label: 'a key the metadata does not list', key: unlisted, expected: 'refused', microsoftSays: /Signing Key could not be retrieved/ },
  { label: "another key under a listed key's id", key: unlisted, header: { kid: 'key-endorsed' }, expected: 'refused', microsoftSays: /invalid signature/ },
  { label: 'a header naming no key (kid)', header: { kid: undefined }, expected: 'refused', microsoftSays: /Signing Key could not be retrieved/ },
  {
    label: 'a payload changed after signing',
    authorization: async () => {
      const [header, , signature] = (await connectorToken(endorsed, { aud: APP_ID, serviceurl: SERVICE_URL })).split('.');
      const now = Math.floor(Date.now() / 1000);
      const payload = Buffer.from(JSON.stringify({ serviceurl: SERVICE_URL, nbf: now - 300, exp: now + 3600, iss: 'https://api.botframework.com', aud: APP_ID, extra: 1 })).toString('base64url');
      return `Bearer ${header}.${payload}.${signature}`;
    },
    expected: 'refused',
    microsoftSays: /invalid signature/,
  },
  {
    label: 'PS256 (an RSA key, an algorithm outside the allowed list)',
    authorization: async () => `Bearer ${await signWith('PS256', endorsed.privateKey)}`,
    expected: 'refused',
    microsoftSays: /invalid algorithm/,
  },
  {
    label: 'HS256 signed with the app password',
    authorization: async () => `Bearer ${await signWith('HS256', new TextEncoder().encode(APP_PASSWORD))}`,
    expected: 'refused',
    microsoftSays: /invalid algorithm/,
  },
  { label: 'no Authorization header', authorization: async () => undefined, expected: 'refused', microsoftSays: /Request is not authorized/ },
  { label: 'Basic credentials', authorization: async () => `Basic ${Buffer.from(`${APP_ID}:${APP_PASSWORD}`).toString('base64')}`, expected: 'refused', microsoftSays: /Is not authenticated/ },

  // --- where Switchboard differs on purpose
  {
    label: 'the camel-case serviceUrl claim instead of serviceurl',
    claims: { serviceurl: undefined, extra: { serviceUrl: SERVICE_URL } },
    expected: 'accepted',
    microsoft: {
      verdict: 'refused',
      says: /ServiceUrl claim do not match/,
      why: 'kept for relays and old test fixtures that mint the camel-case spelling; the token is still signed by a listed key and bound to this serviceUrl',
    },
  },
  {
    label: 'a token without exp',
    claims: { exp: undefined },
    expected: 'refused',
    microsoft: { verdict: 'accepted', why: 'the Bot Connector always sets exp (an hour); a token without one, once captured, would be good forever' },
  },
  {
    label: 'the scheme written "bearer"',
    authorization: async () => (await bearer(endorsed)()).replace(/^Bearer/, 'bearer'),
    expected: 'accepted',
    microsoft: { verdict: 'refused', says: /Is not authenticated/, why: 'HTTP authentication schemes are case-insensitive (RFC 9110 §11.1); the token itself is checked in full' },
  },
  {
    label: 'a message activity without serviceUrl',
    activity: activity({ serviceUrl: undefined }),
    expected: 'refused',
    microsoft: {
      verdict: 'accepted',
      why: 'the SDK skips the serviceurl check when the activity names none; such an activity cannot be answered, and a token must be bound to where answers go',
    },
  },
  {
    label: 'an activity without channelId, signed by an endorsed key',
    activity: activity({ channelId: undefined }),
    expected: 'accepted',
    microsoft: {
      verdict: 'refused',
      says: /Cannot read properties of undefined \(reading 'trim'\)/,
      why: "the JS SDK crashes on it (channelId.trim()); its own comment, and Microsoft's C# and Python SDKs, say an activity without channelId asserts no endorsement and passes",
    },
  },
];

async function signWith(alg: string, key: Parameters<SignJWT['sign']>[0]): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ serviceurl: SERVICE_URL, nbf: now - 300, exp: now + 3600, iss: 'https://api.botframework.com', aud: APP_ID })
    .setProtectedHeader({ alg, kid: endorsed.kid, typ: 'JWT' })
    .sign(key);
}

/** Microsoft's verdict: `authenticateRequest` on the public cloud (channelService ''), as a Bot Framework JS bot runs it. */
async function microsoftVerdict(body: Record<string, unknown>, authorization: string | undefined): Promise<{ verdict: Verdict; says: string }> {
  try {
    const identity = await JwtTokenValidation.authenticateRequest(body, authorization ?? '', new SimpleCredentialProvider(APP_ID, APP_PASSWORD), '');
    return identity.isAuthenticated ? { verdict: 'accepted', says: '' } : { verdict: 'refused', says: 'not authenticated' };
  } catch (error) {
    return { verdict: 'refused', says: (error as Error).message };
  }
}

/** Switchboard's verdict, over HTTP: 200 `success` or 401, and the reason it logged. */
async function switchboardVerdict(body: Record<string, unknown>, authorization: string | undefined): Promise<{ verdict: Verdict; status: number; reason: unknown }> {
  const before = host.logs.lines.length;
  const response = await host.post('botframework', body, { headers: authorization === undefined ? {} : { authorization } });
  const rejected = host.logs.lines.slice(before).map((line) => JSON.parse(line) as { msg?: string; reason?: unknown }).find((line) => line.msg === 'request rejected: not verified');
  return { verdict: response.status === 200 && response.text === 'success' ? 'accepted' : 'refused', status: response.status, reason: rejected?.reason };
}

// Serial: each case reads the log lines its own request wrote.
for (const c of cases) {
  test.serial(`botframework referee: ${c.label} → Switchboard ${c.expected}, Microsoft's SDK ${c.microsoft?.verdict ?? c.expected}`, async (t) => {
    const body = c.activity ?? activity();
    const authorization = await (c.authorization ?? bearer(c.key ?? endorsed, c.claims, c.header))();
    const microsoft = await microsoftVerdict(body, authorization);
    const switchboard = await switchboardVerdict(body, authorization);

    t.is(switchboard.verdict, c.expected, `Switchboard answered ${switchboard.status} (${String(switchboard.reason)})`);
    t.is(switchboard.status, c.expected === 'accepted' ? 200 : 401);
    if (c.expected === 'refused') t.is(typeof switchboard.reason, 'string', 'the reason is logged');
    const expectedMicrosoft = c.microsoft?.verdict ?? c.expected;
    t.is(microsoft.verdict, expectedMicrosoft, `Microsoft's SDK said: ${microsoft.says}`);
    const says = c.microsoft ? c.microsoft.says : c.microsoftSays;
    if (expectedMicrosoft === 'refused') {
      if (says === undefined) return t.fail('a refusal case names why Microsoft refuses');
      t.regex(microsoft.says, says);
    }
    if (c.microsoft) t.not(c.microsoft.verdict, c.expected, `a deliberate difference (${c.microsoft.why}) is a difference`);
  });
}

test.serial('botframework referee: the secrets never reach Switchboard\'s logs', (t) => {
  t.true(host.logs.lines.length > 0);
  t.false(host.logs.text.includes(APP_PASSWORD));
});
