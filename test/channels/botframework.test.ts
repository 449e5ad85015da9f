import test from 'ava';
import nock from 'nock';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, createLocalJWKSet, type JWK } from 'jose';
import { HttpClient } from 'switchboard';
import BotFrameworkInput, {
  BotFrameworkOutput,
  OpenIdKeys,
  TokenCache,
  activityText,
  cardAction,
  parseActivity,
  verifyToken,
  type KeySource,
} from '../../channels/botframework/index.js';
import { runChannelCases, startServer, ScriptedBot, type OutgoingCall } from '../harness.js';
import { connectorKey, connectorToken, type ConnectorKey } from './botframework.tokens.js';

const APP_ID = '8b0f7e2c-3d4a-4a5b-9c6d-7e8f90a1b2c3';
const APP_PASSWORD = 'Qx8Q~not.a.real.secret_7yT3dLkW2pZr';
const ISSUER = 'https://api.botframework.com';
const SERVICE_URL = 'https://smba.trafficmanager.net/amer/';
const TOKEN_URL = 'https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token';
const BOT_TOKEN = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.outgoing-bot-token.sig';
const USER_ID = '29:1XJKJMvc5GBtc2JwZq0oj8tHZmzrQgFmB39ATiQWA85gQtHieVkKilBZ9XHoq9j7Zaqt7CZ-NJWi7me2kHTL3Bw';
const BOT = { id: `28:${APP_ID}`, name: 'Switchboard' };
const CONVERSATION = { conversationType: 'personal', tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47', id: 'a:1dAm2tJcbL6nW5RoqY0Jc1_5Fz4UmM0Qp8Zq9cLk3eXnV' };
const ACTIVITY_ID = '1732536000000';
const ACTIVITIES_URL = `${SERVICE_URL}v3/conversations/${encodeURIComponent(CONVERSATION.id)}/activities`;

// --- the keys Bot Framework signs with, served as OpenID metadata + JWKS by a local server (nock is reset per case)

const tokens: Record<string, string> = {};
let metadataUrl = '';
let keySet: { keys: JWK[] } = { keys: [] };
let signingKey: ConnectorKey;
let otherKey: ConnectorKey;
let keyServer: Server;
const hits: string[] = [];

interface Claims {
  iss?: string;
  aud?: string;
  /** The `serviceurl` claim, as the Bot Connector names it; `undefined`: absent. */
  serviceurl?: string | undefined;
  /** Seconds relative to now. */
  exp?: number;
  nbf?: number;
  extra?: Record<string, unknown>;
}

/** A token as the Bot Connector mints it (claims `aud, exp, iss, nbf, serviceurl`), see botframework.tokens.ts. */
async function signToken(claims: Claims = {}, key: ConnectorKey = signingKey, kid = 'key-1'): Promise<string> {
  return connectorToken(
    key,
    { aud: claims.aud ?? APP_ID, serviceurl: 'serviceurl' in claims ? claims.serviceurl : SERVICE_URL, iss: claims.iss ?? ISSUER, nbf: claims.nbf ?? -60, exp: claims.exp ?? 3600, ...(claims.extra ? { extra: claims.extra } : {}) },
    { kid },
  );
}

test.before(async () => {
  signingKey = connectorKey('key-1');
  otherKey = connectorKey('key-unknown');
  // As login.botframework.com lists them: each key names the channels that endorse it.
  keySet = { keys: [signingKey.jwk] };
  keyServer = createServer((req, res) => {
    hits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json' });
    if (req.url === '/v1/.well-known/openidconfiguration') {
      res.end(JSON.stringify({ issuer: ISSUER, authorization_endpoint: 'https://invalid.botframework.com', jwks_uri: `${base}/v1/.well-known/keys`, id_token_signing_alg_values_supported: ['RS256'], token_endpoint_auth_methods_supported: ['private_key_jwt'] }));
    } else {
      res.end(JSON.stringify(keySet));
    }
  });
  await new Promise<void>((resolve) => keyServer.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}`;
  metadataUrl = `${base}/v1/.well-known/openidconfiguration`;
  CREDENTIALS.openid_metadata = metadataUrl;

  tokens.valid = await signToken();
  tokens.expired = await signToken({ exp: -10 * 60, nbf: -70 * 60 });
  tokens.expiredWithinSkew = await signToken({ exp: -2 * 60, nbf: -62 * 60 });
  tokens.notYetValid = await signToken({ nbf: 10 * 60 });
  tokens.wrongAudience = await signToken({ aud: 'another-bots-app-id' });
  tokens.wrongIssuer = await signToken({ iss: 'https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/' });
  tokens.otherServiceUrl = await signToken({ serviceurl: 'https://smba.trafficmanager.net/emea/' });
  tokens.noServiceUrl = await signToken({ serviceurl: undefined });
  // The camel-case spelling some self-made relays mint: accepted too, though the Bot Connector never sends it.
  tokens.legacyServiceUrl = await signToken({ serviceurl: undefined, extra: { serviceUrl: SERVICE_URL } });
  tokens.legacyOtherServiceUrl = await signToken({ serviceurl: undefined, extra: { serviceUrl: 'https://smba.trafficmanager.net/emea/' } });
  // Both spellings: the Bot Connector's `serviceurl` is the one that counts.
  tokens.bothSpellingsWrongLower = await signToken({ serviceurl: 'https://smba.trafficmanager.net/emea/', extra: { serviceUrl: SERVICE_URL } });
  tokens.rs384 = await connectorToken(signingKey, { aud: APP_ID, serviceurl: SERVICE_URL }, { alg: 'RS384' });
  tokens.rs512 = await connectorToken(signingKey, { aud: APP_ID, serviceurl: SERVICE_URL }, { alg: 'RS512' });
  tokens.noKid = await connectorToken(signingKey, { aud: APP_ID, serviceurl: SERVICE_URL }, { kid: undefined });
  tokens.noExp = await connectorToken(signingKey, { aud: APP_ID, serviceurl: SERVICE_URL, exp: undefined });
  tokens.unknownKey = await signToken({}, otherKey, 'key-unknown');
  tokens.wrongKeyKnownKid = await signToken({}, otherKey, 'key-1');
  // A real header and payload with the signature of another token: the signature does not match.
  const [header, payload] = tokens.valid.split('.');
  tokens.badSignature = `${header}.${payload}.${tokens.wrongAudience.split('.')[2]}`;
  tokens.hs256 = await new SignJWT({ serviceurl: SERVICE_URL })
    .setProtectedHeader({ alg: 'HS256', kid: 'key-1' })
    .setIssuer(ISSUER)
    .setAudience(APP_ID)
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(APP_PASSWORD));
});

test.after.always(() => new Promise<void>((resolve) => (keyServer ? keyServer.close(() => resolve()) : resolve())));

const CREDENTIALS: Record<string, unknown> = { app_id: APP_ID, app_password: APP_PASSWORD, openid_metadata: 'set in before()' };

const bearer = (name: string) => () => ({ authorization: `Bearer ${tokens[name]}` });
const sign = bearer('valid');

/** When this file's activities were "sent": `timestamp` is checked against the replay window (1 h by default). */
const SENT = new Date();

/** A message activity as Teams posts it (learn.microsoft.com, Bot Connector API reference). */
function activity(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'message',
    id: ACTIVITY_ID,
    timestamp: SENT.toISOString(),
    localTimestamp: new Date(SENT.getTime() + 3_600_000).toISOString().replace('Z', '+01:00'),
    serviceUrl: SERVICE_URL,
    channelId: 'msteams',
    from: { id: USER_ID, name: 'Megan Bowen', aadObjectId: '2f3e5c1a-6b7d-4e8f-9a0b-1c2d3e4f5a6b' },
    conversation: CONVERSATION,
    recipient: BOT,
    textFormat: 'plain',
    locale: 'en-US',
    text: 'hello',
    entities: [{ type: 'clientInfo', locale: 'en-US', country: 'US', platform: 'Web', timezone: 'Europe/Berlin' }],
    channelData: { tenant: { id: CONVERSATION.tenantId } },
    ...fields,
  };
}

const tokenCall = (accessToken = BOT_TOKEN, url = TOKEN_URL): OutgoingCall => ({
  method: 'POST',
  url,
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  form: { grant_type: 'client_credentials', client_id: APP_ID, client_secret: APP_PASSWORD, scope: 'https://api.botframework.com/.default' },
  reply: { body: { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: accessToken } },
});

/** What every answer activity carries, as Rasa sends it. */
const base = { type: 'message', from: BOT, recipient: { id: USER_ID }, conversation: { id: CONVERSATION.id }, replyToId: ACTIVITY_ID, channelData: { notification: { alert: 'true' } }, text: '' };

const post = (fields: Record<string, unknown>, url = ACTIVITIES_URL): OutgoingCall => ({
  method: 'POST',
  url,
  headers: { authorization: `Bearer ${BOT_TOKEN}`, 'content-type': 'application/json' },
  body: { ...base, ...fields },
  reply: { status: 201, body: { id: '1:1Ab2Cd3Ef4Gh' } },
});

const hero = (content: Record<string, unknown>) => ({ attachments: [{ contentType: 'application/vnd.microsoft.card.hero', content }] });

const refused = (label: string, token: string, body: object = activity()) => ({
  label: `botframework: ${label} → 401, the bot never called`,
  body,
  sign: bearer(token),
  status: 401,
  response: { error: 'request could not be verified' },
  received: [],
  outgoing: [],
});

runChannelCases(test, {
  channel: BotFrameworkInput,
  credentials: CREDENTIALS,
  cases: [
    { label: 'botframework: GET / is the health route', method: 'GET', path: '/', status: 200, response: { status: 'ok' } },
    {
      label: 'botframework: a message is answered success, a token fetched, and the answer posted to the serviceUrl',
      roundTrip: 1,
      body: activity(),
      sign,
      answers: [{ text: 'Hey there!' }],
      status: 200,
      response: 'success',
      received: [
        {
          text: 'hello',
          senderId: USER_ID,
          messageId: ACTIVITY_ID,
          inputChannel: 'botframework',
          metadata: { serviceUrl: SERVICE_URL, channelId: 'msteams', conversation: CONVERSATION, recipient: BOT, from: activity().from as object, channelData: { tenant: { id: CONVERSATION.tenantId } } },
        },
      ],
      outgoing: [tokenCall(), post({ text: 'Hey there!' })],
    },
    ...(['legacyServiceUrl', 'rs384', 'rs512'] as const).map((token) => ({
      label: `botframework: ${{ legacyServiceUrl: 'the legacy camel-case serviceUrl claim', rs384: 'an RS384 token', rs512: 'an RS512 token' }[token]} is accepted`,
      body: activity({ id: `accepted-${token}` }),
      sign: bearer(token),
      answers: [],
      status: 200,
      response: 'success',
      received: [{ text: 'hello', messageId: `accepted-${token}` }],
      outgoing: [],
    })),
    {
      label: 'botframework: a token expired less than 5 minutes ago is accepted (clock skew)',
      body: activity(),
      sign: bearer('expiredWithinSkew'),
      status: 200,
      received: [{ text: 'hello' }],
      outgoing: [tokenCall(), post({ text: 'ok' })],
    },
    {
      label: 'botframework: attachments a user sends are in metadata',
      body: activity({ text: '', attachments: [{ contentType: 'image/png', contentUrl: 'https://smba.trafficmanager.net/amer/v3/attachments/0-cus-d1-abc/views/original', name: 'photo.png' }] }),
      sign,
      answers: [],
      status: 200,
      received: [{ text: '', metadata: { attachments: [{ contentType: 'image/png', contentUrl: 'https://smba.trafficmanager.net/amer/v3/attachments/0-cus-d1-abc/views/original', name: 'photo.png' }] } }],
    },
    {
      label: "botframework: an Adaptive Card Action.Submit's value.payload is the text",
      body: activity({ text: undefined, value: { payload: '/mood_great' } }),
      sign,
      answers: [],
      status: 200,
      received: [{ text: '/mood_great', metadata: { value: { payload: '/mood_great' } } }],
    },
    {
      label: "botframework: a card's other inputs arrive as JSON text",
      body: activity({ text: undefined, value: { name: 'Megan', rating: '5' } }),
      sign,
      answers: [],
      status: 200,
      received: [{ text: '{"name":"Megan","rating":"5"}' }],
    },
    {
      label: "botframework: the bot's @mention in a Teams channel is removed from the text",
      body: activity({
        text: '<at>Switchboard</at> how are you?',
        conversation: { ...CONVERSATION, conversationType: 'channel', isGroup: true },
        entities: [{ type: 'mention', text: '<at>Switchboard</at>', mentioned: BOT }],
      }),
      sign,
      answers: [],
      status: 200,
      received: [{ text: 'how are you?' }],
    },
    {
      label: 'botframework: a redelivered activity id reaches the bot once',
      body: activity(),
      sign,
      repeat: 3,
      answers: [{ text: 'once' }],
      status: 200,
      response: 'success',
      received: [{ text: 'hello', messageId: ACTIVITY_ID }],
      outgoing: [tokenCall(), post({ text: 'once' })],
    },
    {
      label: 'botframework: a conversationUpdate is answered success and ignored',
      body: activity({ type: 'conversationUpdate', text: undefined, membersAdded: [{ id: BOT.id }, { id: USER_ID }] }),
      sign,
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'botframework: a typing activity is answered success and ignored',
      body: activity({ type: 'typing', text: undefined }),
      sign,
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },

    // --- verification
    {
      label: 'botframework: missing Authorization → 401, the bot never called',
      body: activity(),
      status: 401,
      response: { error: 'request could not be verified' },
      received: [],
      outgoing: [],
    },
    {
      label: 'botframework: a Basic Authorization → 401',
      body: activity(),
      headers: { authorization: `Basic ${Buffer.from(`${APP_ID}:${APP_PASSWORD}`).toString('base64')}` },
      status: 401,
      received: [],
    },
    refused('an expired token (10 minutes ago)', 'expired'),
    refused('a token not valid for 10 more minutes', 'notYetValid'),
    refused('a token for another audience', 'wrongAudience'),
    refused('a token from another issuer', 'wrongIssuer'),
    refused('a serviceurl claim that is not the activity serviceUrl', 'otherServiceUrl'),
    refused('a token without a serviceurl claim', 'noServiceUrl'),
    refused('a camel-case serviceUrl claim that is not the activity serviceUrl', 'legacyOtherServiceUrl'),
    refused('a wrong serviceurl claim, with a right camel-case serviceUrl beside it', 'bothSpellingsWrongLower'),
    refused('a token whose header names no key (kid)', 'noKid'),
    refused('a token without an expiry (exp)', 'noExp'),
    refused('a token signed by a key the metadata does not list', 'unknownKey'),
    refused("a token signed by another key under a listed key's id", 'wrongKeyKnownKid'),
    refused('a token whose signature does not match', 'badSignature'),
    refused('an HS256 token signed with the app password', 'hs256'),
    refused('a key not endorsed for the activity channelId', 'valid', activity({ channelId: 'skype' })),
    refused("an activity whose serviceUrl is not the token's", 'valid', activity({ serviceUrl: 'https://evil.example.com/' })),

    // --- malformed input
    {
      label: 'botframework: malformed JSON with a valid token → 400',
      body: '{"type": "message", ',
      headers: { 'content-type': 'application/json' },
      sign,
      status: 400,
      received: [],
    },
    // Verify before parse: without a token the body is never parsed, so malformed JSON is a 401, not a 400.
    { label: 'botframework: malformed JSON without a token → 401 before any parsing, the bot never called', body: '{"type": "message", ', headers: { 'content-type': 'application/json' }, status: 401, received: [] },
    { label: 'botframework: a JSON object that is not an activity (no type) → 400', body: { serviceUrl: SERVICE_URL, text: 'hi' }, sign, status: 400, received: [] },
    refused('a JSON object without a serviceUrl', 'valid', { hello: 'world' }),
    {
      label: 'botframework: a message activity without a conversation → 400',
      body: activity({ conversation: undefined }),
      sign,
      status: 400,
      received: [],
    },

    // --- every answer kind
    {
      label: 'botframework: text with paragraphs → one message activity per paragraph',
      body: activity(),
      sign,
      answers: [{ text: 'first\n\nsecond' }],
      status: 200,
      outgoing: [tokenCall(), post({ text: 'first' }), post({ text: 'second' })],
    },
    {
      label: 'botframework: buttons → a hero card with the text as subtitle and imBack / openUrl actions',
      body: activity(),
      sign,
      answers: [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'docs', type: 'web_url', url: 'https://rasa.com/docs' }, { title: 'call', type: 'call', value: 'tel:+14155550100' } as never] }],
      status: 200,
      outgoing: [
        tokenCall(),
        post(hero({ subtitle: 'How are you?', buttons: [{ type: 'imBack', title: 'great', value: '/mood_great' }, { type: 'openUrl', title: 'docs', value: 'https://rasa.com/docs' }, { type: 'call', title: 'call', value: 'tel:+14155550100' }] })),
      ],
    },
    {
      label: 'botframework: quick replies → a hero card of imBack buttons',
      body: activity(),
      sign,
      answers: [{ text: 'Sure?', quick_replies: [{ title: 'yes', payload: '/affirm' }, { title: 'no', payload: '/deny' }] }],
      status: 200,
      outgoing: [tokenCall(), post(hero({ subtitle: 'Sure?', buttons: [{ type: 'imBack', title: 'yes', value: '/affirm' }, { type: 'imBack', title: 'no', value: '/deny' }] }))],
    },
    {
      label: 'botframework: text and image → a text activity, then a hero card with the image',
      body: activity(),
      sign,
      answers: [{ text: 'Look:', image: 'https://i.imgur.com/nGF1K8f.jpg' }],
      status: 200,
      outgoing: [tokenCall(), post({ text: 'Look:' }), post(hero({ images: [{ url: 'https://i.imgur.com/nGF1K8f.jpg' }] }))],
    },
    {
      label: 'botframework: elements → one hero card activity per element',
      body: activity(),
      sign,
      answers: [
        {
          elements: [
            { title: 'Card one', subtitle: 'first', image_url: 'https://example.com/1.png', buttons: [{ title: 'open', payload: '/open' }] },
            { title: 'Card two', buttons: [{ title: 'site', type: 'web_url', url: 'https://example.com' }] },
          ],
        },
      ],
      status: 200,
      outgoing: [
        tokenCall(),
        post(hero({ title: 'Card one', subtitle: 'first', images: [{ url: 'https://example.com/1.png' }], buttons: [{ type: 'imBack', title: 'open', value: '/open' }] })),
        post(hero({ title: 'Card two', buttons: [{ type: 'openUrl', title: 'site', value: 'https://example.com' }] })),
      ],
    },
    {
      label: 'botframework: custom JSON is merged over the defaults (an Adaptive Card)',
      body: activity(),
      sign,
      answers: [{ custom: { attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: { type: 'AdaptiveCard', version: '1.4', body: [{ type: 'TextBlock', text: 'Hi' }] } }], channelData: { notification: { alert: 'false' } } } }],
      status: 200,
      outgoing: [
        tokenCall(),
        post({ attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: { type: 'AdaptiveCard', version: '1.4', body: [{ type: 'TextBlock', text: 'Hi' }] } }], channelData: { notification: { alert: 'false' } } }),
      ],
    },
    {
      label: 'botframework: an attachment in Bot Framework shape is sent as one; any other as text',
      body: activity(),
      sign,
      answers: [{ attachment: { contentType: 'application/pdf', contentUrl: 'https://example.com/doc.pdf', name: 'doc.pdf' } }, { attachment: { type: 'file', payload: { url: 'https://example.com/doc.pdf' } } }],
      status: 200,
      outgoing: [
        tokenCall(),
        post({ attachments: [{ contentType: 'application/pdf', contentUrl: 'https://example.com/doc.pdf', name: 'doc.pdf' }] }),
        post({ text: 'Attachment: {"type":"file","payload":{"url":"https://example.com/doc.pdf"}}' }),
      ],
    },
  ],
});

// A single-tenant bot behind a proxy: its tenant's token endpoint, and answers to api_url instead of the serviceUrl.
const TENANT = 'c9a8b7d6-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
const PROXY = 'https://bf-proxy.internal.example/connector';
runChannelCases(test, {
  channel: BotFrameworkInput,
  get credentials() {
    return { ...CREDENTIALS, tenant_id: TENANT, api_url: `${PROXY}/` };
  },
  cases: [
    {
      label: "botframework (single tenant, api_url): the tenant's token endpoint, answers to api_url",
      body: activity(),
      sign,
      answers: [{ text: 'via proxy' }],
      status: 200,
      outgoing: [
        tokenCall(BOT_TOKEN, `https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`),
        post({ text: 'via proxy' }, `${PROXY}/v3/conversations/${encodeURIComponent(CONVERSATION.id)}/activities`),
      ],
    },
  ],
});

// --- replays: an activity's `timestamp` older than replay_window (1 h by default) never reaches the bot.

const MINUTE = 60_000;
const sentAt = (ms: number) => activity({ timestamp: new Date(ms).toISOString() });
const staleActivity = (label: string, body: object) => ({ label: `botframework replay: ${label} → 200 success, the bot never called`, body, sign, status: 200, response: 'success', received: [], outgoing: [] });
const freshActivity = (label: string, body: object) => ({
  label: `botframework replay: ${label} → processed`,
  body,
  sign,
  answers: [{ text: 'ok' }],
  status: 200,
  response: 'success',
  received: [{ text: 'hello' }],
  outgoing: [tokenCall(), post({ text: 'ok' })],
});

runChannelCases(test, {
  channel: BotFrameworkInput,
  credentials: CREDENTIALS,
  cases: [
    staleActivity('an activity (with a valid token) sent in 2023', activity({ timestamp: '2023-05-02T08:15:30.123Z' })),
    staleActivity('an activity sent 61 minutes ago', sentAt(Date.now() - 61 * MINUTE)),
    freshActivity('an activity sent 50 minutes ago', sentAt(Date.now() - 50 * MINUTE)),
    staleActivity('a timestamp 10 minutes in the future', sentAt(Date.now() + 10 * MINUTE)),
    freshActivity('a timestamp 2 minutes in the future (clock skew)', sentAt(Date.now() + 2 * MINUTE)),
    staleActivity('a message activity without timestamp', activity({ timestamp: undefined })),
    staleActivity('a timestamp that is not a date', activity({ timestamp: 'yesterday' })),
  ],
});

runChannelCases(test, {
  channel: BotFrameworkInput,
  get credentials() {
    return { ...CREDENTIALS, replay_window: 0 };
  },
  cases: [freshActivity('replay_window: 0 turns the check off: an activity sent in 2023', activity({ timestamp: '2023-05-02T08:15:30.123Z' }))],
});

// --- direct tests, on a server of their own

function netOnlyLocal(t: { teardown: (fn: () => void) => void }): void {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => nock.cleanAll());
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

async function deliver(request: (path: string, init?: RequestInit) => Promise<{ status: number; text: string }>, body: object, token = tokens.valid) {
  return request('/webhooks/botframework/webhook', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
}

function recordActivities(calls: Array<{ authorization: unknown; body: unknown }>, times = 5) {
  return nock('https://smba.trafficmanager.net')
    .post(`/amer/v3/conversations/${encodeURIComponent(CONVERSATION.id)}/activities`)
    .times(times)
    .reply(function reply(_uri, body) {
      calls.push({ authorization: this.req.headers.authorization, body });
      return [201, { id: `1:${calls.length}` }];
    });
}

test.serial('botframework: the token is fetched once and reused across messages; the keys are fetched once', async (t) => {
  netOnlyLocal(t);
  const tokenScope = nock('https://login.microsoftonline.com').post('/botframework.com/oauth2/v2.0/token').once().reply(200, { token_type: 'Bearer', expires_in: 3599, access_token: BOT_TOKEN });
  const calls: Array<{ authorization: unknown; body: unknown }> = [];
  recordActivities(calls);
  const hitsBefore = hits.length;
  const { request } = await startServer(t, [BotFrameworkInput.fromCredentials(CREDENTIALS)], { bot: new ScriptedBot([{ text: 'hi' }]) });
  t.is((await deliver(request, activity({ id: 'a-1', text: 'one' }))).status, 200);
  await until(() => calls.length >= 1);
  t.is((await deliver(request, activity({ id: 'a-2', text: 'two' }))).status, 200);
  await until(() => calls.length >= 2);
  t.true(tokenScope.isDone());
  t.deepEqual(calls.map((c) => c.authorization), [`Bearer ${BOT_TOKEN}`, `Bearer ${BOT_TOKEN}`]);
  t.deepEqual(calls.map((c) => (c.body as { replyToId: string }).replyToId), ['a-1', 'a-2']);
  t.deepEqual(hits.slice(hitsBefore), ['/v1/.well-known/openidconfiguration', '/v1/.well-known/keys'], 'metadata and keys fetched once');
});

test.serial('botframework: a slow bot shows a typing activity, then answers', async (t) => {
  netOnlyLocal(t);
  nock('https://login.microsoftonline.com').post('/botframework.com/oauth2/v2.0/token').reply(200, { token_type: 'Bearer', expires_in: 3599, access_token: BOT_TOKEN });
  const calls: Array<{ authorization: unknown; body: unknown }> = [];
  recordActivities(calls);
  const bot = new ScriptedBot(async () => {
    await new Promise((resolve) => setTimeout(resolve, 700));
    return [{ text: 'done thinking' }];
  });
  const { request } = await startServer(t, [BotFrameworkInput.fromCredentials(CREDENTIALS)], { bot });
  const started = Date.now();
  const response = await deliver(request, activity({ id: 'slow-1', text: 'think hard' }));
  t.is(response.status, 200);
  t.is(response.text, 'success');
  t.true(Date.now() - started < 500, 'acknowledged before the bot answered');
  await until(() => calls.length >= 2);
  t.deepEqual(
    calls.map((c) => c.body),
    [
      { type: 'typing', from: BOT, recipient: { id: USER_ID }, conversation: { id: CONVERSATION.id }, replyToId: 'slow-1' },
      { ...base, replyToId: 'slow-1', text: 'done thinking' },
    ],
  );
});

test.serial('botframework: typing_indicator: false sends no typing activity', async (t) => {
  netOnlyLocal(t);
  nock('https://login.microsoftonline.com').post('/botframework.com/oauth2/v2.0/token').reply(200, { token_type: 'Bearer', expires_in: 3599, access_token: BOT_TOKEN });
  const calls: Array<{ authorization: unknown; body: unknown }> = [];
  recordActivities(calls);
  const bot = new ScriptedBot(async () => {
    await new Promise((resolve) => setTimeout(resolve, 700));
    return [{ text: 'done thinking' }];
  });
  const { request } = await startServer(t, [BotFrameworkInput.fromCredentials({ ...CREDENTIALS, typing_indicator: false })], { bot });
  await deliver(request, activity({ id: 'slow-2' }));
  await until(() => calls.length >= 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(calls.map((c) => (c.body as { type: string }).type), ['message']);
});

test.serial('botframework: a failed answer is logged with the recipient, never with the app password or token', async (t) => {
  netOnlyLocal(t);
  nock('https://login.microsoftonline.com').post('/botframework.com/oauth2/v2.0/token').reply(200, { token_type: 'Bearer', expires_in: 3599, access_token: BOT_TOKEN });
  nock('https://smba.trafficmanager.net').post(/.*/).reply(403, { error: { code: 'BotNotInConversationRoster', message: 'The bot is not part of the conversation roster.' } });
  const { request, logs } = await startServer(t, [BotFrameworkInput.fromCredentials(CREDENTIALS)], { bot: new ScriptedBot([{ text: 'hi' }]) });
  await deliver(request, activity({ id: 'fail-1' }));
  await until(() => logs.text.includes('outgoing call failed'));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.regex(logs.text, /BotNotInConversationRoster/);
  t.true(logs.text.includes(USER_ID));
  t.false(logs.text.includes(APP_PASSWORD), 'the app password is not in the logs');
  t.false(logs.text.includes(BOT_TOKEN), 'the bot token is not in the logs');
});

// --- the parts, directly

test.serial('botframework: the access token obtained at run time is masked when the connector echoes it in a failed answer', async (t) => {
  netOnlyLocal(t);
  nock('https://login.microsoftonline.com').post('/botframework.com/oauth2/v2.0/token').reply(200, { token_type: 'Bearer', expires_in: 3599, access_token: BOT_TOKEN });
  nock('https://smba.trafficmanager.net').post(/.*/).reply(403, { error: { code: 'Forbidden', message: `token ${BOT_TOKEN} is not valid for this conversation` } });
  const { request, logs } = await startServer(t, [BotFrameworkInput.fromCredentials(CREDENTIALS)], { bot: new ScriptedBot([{ text: 'hi' }]) });
  await deliver(request, activity({ id: 'fail-echo-1' }));
  await until(() => logs.text.includes('sending an answer failed'));
  t.regex(logs.text, /token \[redacted\] is not valid/);
  t.false(logs.text.includes(BOT_TOKEN), 'the bot token is not in the logs');
});

test.serial('botframework TokenCache: renewed 5 minutes before expiry; concurrent callers share one request', async (t) => {
  netOnlyLocal(t);
  let now = 1_000_000;
  const scope = nock('https://login.example').post('/token').reply(200, { token_type: 'Bearer', expires_in: 3600, access_token: 'first' }).post('/token').reply(200, { token_type: 'Bearer', expires_in: 3600, access_token: 'second' });
  const cache = new TokenCache(new HttpClient({ retries: 0 }), { tokenUrl: 'https://login.example/token', appId: APP_ID, appPassword: APP_PASSWORD, now: () => now });
  t.deepEqual(await Promise.all([cache.get(), cache.get()]), ['first', 'first']);
  now += 54 * 60_000;
  t.is(await cache.get(), 'first');
  now += 2 * 60_000;
  t.is(await cache.get(), 'second');
  t.true(scope.isDone());
});

test.serial('botframework TokenCache: a failed token request is not cached', async (t) => {
  netOnlyLocal(t);
  nock('https://login.example').post('/token').reply(401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' }).post('/token').reply(200, { expires_in: 3600, access_token: 'after-fix' });
  const cache = new TokenCache(new HttpClient({ retries: 0 }), { tokenUrl: 'https://login.example/token', appId: APP_ID, appPassword: APP_PASSWORD });
  await t.throwsAsync(cache.get(), { message: /answered 401/ });
  t.is(await cache.get(), 'after-fix');
});

test.serial('botframework output: a 401 from the connector renews the token and tries once more', async (t) => {
  netOnlyLocal(t);
  nock('https://login.example').post('/token').reply(200, { expires_in: 3600, access_token: 'stale' }).post('/token').reply(200, { expires_in: 3600, access_token: 'fresh' });
  const seen: unknown[] = [];
  nock('https://connector.example')
    .post('/v3/conversations/c1/activities').reply(function () { seen.push(this.req.headers.authorization); return [401, { message: 'Authorization has been denied for this request.' }]; })
    .post('/v3/conversations/c1/activities').reply(function () { seen.push(this.req.headers.authorization); return [201, { id: 'x' }]; });
  const http = new HttpClient({ retries: 0 });
  const tokens = new TokenCache(http, { tokenUrl: 'https://login.example/token', appId: APP_ID, appPassword: APP_PASSWORD });
  const output = new BotFrameworkOutput(http, tokens, { serviceUrl: 'https://connector.example/', channelId: 'webchat', conversation: { id: 'c1' }, bot: BOT, replyToId: undefined }, { apiUrl: undefined, typingIndicator: true });
  await output.sendTextMessage('u1', 'hi');
  t.deepEqual(seen, ['Bearer stale', 'Bearer fresh']);
});

test.serial('botframework OpenIdKeys: a token naming a new key id makes the keys be fetched again (rotation)', async (t) => {
  const next = connectorKey('key-2', null);
  const saved = keySet;
  t.teardown(() => {
    keySet = saved;
  });
  const keys = new OpenIdKeys(new HttpClient({ retries: 0 }), metadataUrl, { cooldownDuration: 0 });
  const check = { appId: APP_ID, activity: { serviceUrl: SERVICE_URL, channelId: 'msteams' } };
  t.true(await verifyToken({ authorization: `Bearer ${tokens.valid}` }, await keys.source(), check));
  const rotated = await signToken({}, next, 'key-2');
  t.is(await verifyToken({ authorization: `Bearer ${rotated}` }, await keys.source(), check), 'token signed with a key the OpenID metadata does not list');
  keySet = { keys: [...saved.keys, next.jwk] };
  t.true(await verifyToken({ authorization: `Bearer ${rotated}` }, await keys.source(), check));
});

test('botframework verifyToken: reasons, never throws; the clock is injectable', async (t) => {
  const local = createLocalJWKSet(keySet as never);
  const keys: KeySource = { getKey: local, jwk: (kid) => keySet.keys.find((k) => k.kid === kid) };
  const check = { appId: APP_ID, activity: { serviceUrl: SERVICE_URL, channelId: 'msteams' } };
  const auth = (name: string) => ({ authorization: `Bearer ${tokens[name]}` });
  t.true(await verifyToken(auth('valid'), keys, check));
  t.true(await verifyToken({ authorization: `bearer  ${tokens.valid}` }, keys, check), 'the scheme is case-insensitive');
  t.true(await verifyToken(auth('valid'), keys, { appId: APP_ID }), 'without an activity only the token is checked');
  t.is(await verifyToken({}, keys, check), 'missing Authorization header');
  t.is(await verifyToken({ authorization: 'Basic abc' }, keys, check), 'Authorization is not a Bearer token');
  t.is(await verifyToken({ authorization: 'Bearer not-a-jwt' }, keys, check), 'token invalid: Invalid Compact JWS');
  t.is(await verifyToken({ authorization: 'Bearer e30.e30.' }, keys, check), 'token names no signing key ("kid")');
  t.is(await verifyToken(auth('expired'), keys, check), 'token expired');
  t.regex(String(await verifyToken(auth('wrongAudience'), keys, check)), /^token claim "aud" invalid/);
  t.regex(String(await verifyToken(auth('wrongIssuer'), keys, check)), /^token claim "iss" invalid/);
  t.regex(String(await verifyToken(auth('notYetValid'), keys, check)), /^token claim "nbf" invalid/);
  t.is(await verifyToken(auth('badSignature'), keys, check), 'token signature invalid');
  t.is(await verifyToken(auth('hs256'), keys, check), 'token algorithm not allowed');
  t.is(await verifyToken(auth('otherServiceUrl'), keys, check), 'the token\'s "serviceurl" claim is not the activity\'s serviceUrl');
  t.is(await verifyToken(auth('noServiceUrl'), keys, check), 'the token\'s "serviceurl" claim is not the activity\'s serviceUrl');
  t.true(await verifyToken(auth('legacyServiceUrl'), keys, check), 'the camel-case "serviceUrl" spelling is accepted too');
  t.true(await verifyToken(auth('rs384'), keys, check));
  t.true(await verifyToken(auth('rs512'), keys, check));
  t.is(await verifyToken(auth('noKid'), keys, check), 'token names no signing key ("kid")');
  t.is(await verifyToken(auth('noExp'), keys, check), 'token claim "exp" invalid: missing');
  t.true(await verifyToken(auth('valid'), { ...keys, jwk: (kid) => ({ ...keys.jwk(kid), endorsements: [] }) }, { ...check, activity: { serviceUrl: SERVICE_URL, channelId: 'skype' } }), 'an empty endorsement list restricts nothing');
  t.is(await verifyToken(auth('valid'), keys, { ...check, activity: { serviceUrl: SERVICE_URL, channelId: 'skype' } }), 'the signing key is not endorsed for channel "skype"');
  t.true(await verifyToken(auth('valid'), keys, { ...check, activity: { serviceUrl: SERVICE_URL } }), 'no channelId asserts no endorsement');
  // Two hours on, the hour-long token is expired even with the skew.
  t.is(await verifyToken(auth('valid'), keys, { ...check, now: new Date(Date.now() + 2 * 3600_000) }), 'token expired');
});

test('botframework parseActivity: messages, ignored types, invalid activities', (t) => {
  const parsed = parseActivity(activity());
  if (parsed.kind !== 'message') return t.fail(parsed.kind);
  t.like(parsed.message, { text: 'hello', senderId: USER_ID, messageId: ACTIVITY_ID });
  t.deepEqual(parsed.message.reply, { serviceUrl: SERVICE_URL, channelId: 'msteams', conversation: CONVERSATION, bot: BOT, replyToId: ACTIVITY_ID });
  t.deepEqual(parseActivity(activity({ type: 'messageReaction' })), { kind: 'ignored', reason: 'activity type "messageReaction"' });
  t.is(parseActivity([]).kind, 'invalid');
  t.is(parseActivity(activity({ serviceUrl: '' })).kind, 'invalid');
  const anonymous = parseActivity(activity({ from: undefined }));
  t.is(anonymous.kind === 'message' ? anonymous.message.senderId : 'x', undefined);
});

test('botframework activityText: text, imBack, card values, mentions', (t) => {
  t.is(activityText({ text: '  hi  ' }), 'hi');
  t.is(activityText({ text: '', value: '/greet' }), '/greet');
  t.is(activityText({ value: { payload: '/mood_great', other: 1 } }), '/mood_great');
  t.is(activityText({ value: { a: 1 } }), '{"a":1}');
  t.is(activityText({}), '');
  t.is(
    activityText({ text: '<at>Switchboard</at> hi <at>Megan</at>', recipient: { id: 'bot' }, entities: [{ type: 'mention', text: '<at>Switchboard</at>', mentioned: { id: 'bot' } }, { type: 'mention', text: '<at>Megan</at>', mentioned: { id: 'u' } }] }),
    'hi <at>Megan</at>',
    "only the bot's own mention is removed",
  );
});

test('botframework cardAction: imBack by default, openUrl for links, Bot Framework actions unchanged', (t) => {
  t.deepEqual(cardAction({ title: 'yes', payload: '/affirm' }), { type: 'imBack', title: 'yes', value: '/affirm' });
  t.deepEqual(cardAction({ title: 'yes' }), { type: 'imBack', title: 'yes', value: 'yes' });
  t.deepEqual(cardAction({ title: 'site', url: 'https://example.com' }), { type: 'openUrl', title: 'site', value: 'https://example.com' });
  t.deepEqual(cardAction({ title: 'x', type: 'messageBack', value: { a: 1 }, text: 'x' } as never), { title: 'x', type: 'messageBack', value: { a: 1 }, text: 'x' });
});

test('botframework: app_id and app_password are required, by name; defaults', (t) => {
  t.is(t.throws(() => BotFrameworkInput.fromCredentials({ app_password: APP_PASSWORD }))?.message, 'missing "app_id"');
  t.is(t.throws(() => BotFrameworkInput.fromCredentials({ app_id: APP_ID }))?.message, 'missing "app_password"');
  const channel = BotFrameworkInput.fromCredentials({ app_id: APP_ID, app_password: APP_PASSWORD });
  t.like(channel.credentials, { tenant_id: 'botframework.com', openid_metadata: 'https://login.botframework.com/v1/.well-known/openidconfiguration', typing_indicator: true });
  t.false(channel.unverified);
  t.regex(t.throws(() => BotFrameworkInput.fromCredentials({ app_id: APP_ID, app_password: APP_PASSWORD, token_url: 'not a url' }))?.message ?? '', /"token_url"/);
});

test.serial('botframework: allow_unverified: true skips the token check (the Bot Framework Emulator)', async (t) => {
  netOnlyLocal(t);
  const { request, bot } = await startServer(t, [BotFrameworkInput.fromCredentials({ ...CREDENTIALS, allow_unverified: true })], { bot: new ScriptedBot([]) });
  const response = await request('/webhooks/botframework/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity({ channelId: 'emulator', serviceUrl: 'http://localhost:51234' })) });
  t.is(response.status, 200);
  await bot.waitFor(1);
  t.is(bot.received[0]?.text, 'hello');
});
