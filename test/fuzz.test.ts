// Bad input never gets a 500: every built-in channel takes random JSON, forms and text — with verification off so that
// random bodies reach its parser, and with verification on, each body sent unsigned and signed the way its platform
// signs (so it gets past the check to the parser). fast-check with a fixed seed, so a failure reproduces.
import test from 'ava';
import fc from 'fast-check';
import { createHash, createHmac, generateKeyPairSync, sign as ed25519Sign } from 'node:crypto';
import twilio from 'twilio';
import { connectorKey, connectorToken } from './channels/botframework.tokens.js';
import { certificates, chatKey, chatToken } from './channels/hangouts.tokens.js';
import { loadChannels } from '#src/loader.js';
import { parseCredentialsText } from '#src/credentials.js';
import { startFakePlatform, startTestHost } from 'switchboard/testing';
import { WebSocket } from 'ws';

test('random webhook bodies never produce a 500 or a stack trace, on any channel', async (t) => {
  const platform = await startFakePlatform();
  t.teardown(() => platform.close());
  const api = platform.url;
  const yaml = `
facebook: {verify: v, page-access-token: p, allow_unverified: true, api_url: "${api}"}
slack: {slack_token: xoxb-1, allow_unverified: true, api_url: "${api}"}
telegram: {access_token: "1:a", verify: bot, webhook_url: "https://x.example/w", allow_unverified: true, api_url: "${api}"}
twilio: {account_sid: AC00000000000000000000000000000000, auth_token: t, twilio_number: "+15005550006", allow_unverified: true, api_url: "${api}"}
twilio_voice: {allow_unverified: true}
mattermost: {url: "${api}/api/v4", token: t, webhook_url: "https://x.example/w", allow_unverified: true}
rocketchat: {user: bot, password: p, server_url: "${api}", allow_unverified: true}
webexteams: {access_token: t, allow_unverified: true, api_url: "${api}"}
whatsapp: {phone_number_id: "106540352242922", access_token: t, verify_token: v, allow_unverified: true, api_url: "${api}"}
line: {channel_access_token: t, follow_intent: /greet, unfollow_intent: /goodbye, allow_unverified: true, api_url: "${api}"}
discord: {application_id: "290926444748734465", allow_unverified: true, api_url: "${api}"}
instagram: {verify: v, page-access-token: p, instagram_account_id: "17841405822304914", allow_unverified: true, api_url: "${api}"}
botframework: {app_id: a, app_password: p, allow_unverified: true, api_url: "${api}", token_url: "${api}/token", openid_metadata: "${api}/openid"}
hangouts: {allow_unverified: true, api_url: "${api}"}
audiocodes: {allow_unverified: true}
jambonz: {allow_unverified: true}
rest:
callback: {url: "${api}/callback"}
`;
  const channels = await loadChannels(parseCredentialsText(yaml, 'fuzz.yml', {}), []);
  const host = await startTestHost(channels, { answers: [{ text: 'ok', buttons: [{ title: 'b', payload: '/b' }] }] });
  t.teardown(() => host.close());
  const names = channels.map((c) => c.name());

  const jsonish = fc.oneof(
    fc.json(),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.dictionary(fc.constantFrom('type', 'event', 'entry', 'message', 'update_id', 'data', 'payload', 'sender', 'text', 'callback_query', 'messages', 'visitor', 'from', 'conversation', 'token', 'challenge', 'object'), fc.jsonValue()).map((v) => JSON.stringify(v)),
  );
  const request = fc.record({
    channel: fc.constantFrom(...names),
    type: fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain'),
    body: fc.oneof(jsonish, fc.string(), fc.string().map((s) => `payload=${encodeURIComponent(s)}`), fc.dictionary(fc.string(), fc.string()).map((d) => new URLSearchParams(d).toString())),
  });

  await fc.assert(
    fc.asyncProperty(request, async ({ channel, type, body }) => {
      const response = await host.post(channel, body, { headers: { 'content-type': type } });
      if (response.status >= 500) throw new Error(`${channel} answered ${response.status} to ${type} ${JSON.stringify(body).slice(0, 200)}: ${response.text}`);
      if (/\n\s+at /.test(response.text)) throw new Error(`${channel} leaked a stack trace`);
    }),
    { seed: 20261125, numRuns: 1500 },
  );
  const crashes = host.logs.lines.filter((line) => /unexpected error while handling a request/.test(line));
  t.deepEqual(crashes, []);
  t.is((await host.request('/health')).status, 200);
});

/** Bodies worth sending: random JSON (some shaped like the platforms'), strings, forms, deep nesting, a byte order mark. */
function bodies() {
  const jsonish = fc.oneof(
    fc.json(),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.dictionary(fc.constantFrom('type', 'event', 'entry', 'message', 'update_id', 'data', 'payload', 'sender', 'text', 'callback_query', 'messages', 'visitor', 'from', 'conversation', 'token', 'challenge', 'object', 'serviceUrl', 'channelId', 'id', 'changes', 'statuses', 'events', 'destination'), fc.jsonValue()).map((v) => JSON.stringify(v)),
    fc.integer({ min: 60, max: 70 }).map((depth) => `{"object":"page","entry":${'['.repeat(depth)}${']'.repeat(depth)}}`),
    // A Messenger Platform envelope (Messenger, Instagram) around random events, so signed bodies reach the event parser.
    fc
      .record({ object: fc.constantFrom('page', 'instagram'), id: fc.constantFrom('17841405822304914', '1'), messaging: fc.array(fc.oneof(fc.jsonValue(), fc.record({ sender: fc.jsonValue(), recipient: fc.jsonValue(), message: fc.jsonValue(), postback: fc.jsonValue() }, { requiredKeys: [] }))) })
      .map(({ object, id, messaging }) => JSON.stringify({ object, entry: [{ id, time: Date.now(), messaging }] })),
  );
  const body = fc.oneof(jsonish, fc.string(), fc.string().map((s) => `payload=${encodeURIComponent(s)}`), fc.dictionary(fc.string(), fc.string()).map((d) => new URLSearchParams(d).toString()));
  return fc.tuple(body, fc.boolean()).map(([text, bom]) => (bom ? `\uFEFF${text}` : text));
}

test('with verification on, random bodies — unsigned, and signed as each platform signs — never produce a 500', async (t) => {
  const key = connectorKey('fuzz-key', null);
  const googleKey = chatKey('fuzz-google-kid');
  const platform = await startFakePlatform((request) => {
    if (request.path === '/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com') return { body: certificates(googleKey) };
    if (request.path === '/openid') return { body: { issuer: 'https://api.botframework.com', jwks_uri: `${platform.url}/keys`, id_token_signing_alg_values_supported: ['RS256'] } };
    if (request.path === '/keys') return { body: { keys: [key.jwk] } };
    return undefined;
  });
  t.teardown(() => platform.close());
  const api = platform.url;
  const discordKey = (() => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    return { privateKey, publicHex: Buffer.from((publicKey.export({ format: 'jwk' }) as { x: string }).x, 'base64url').toString('hex') };
  })();
  const secrets = { line: 'line-channel-secret', facebook: 'fb-app-secret', slack: 'slack-signing-secret', telegram: 'tg-secret-token', twilio: 'twilio-auth-token', twilio_voice: 'twilio-voice-auth-token', webex: 'webex-secret', whatsapp: 'wa-app-secret', instagram: 'ig-app-secret', mattermost: 'mm-webhook-token', rocketchat: 'rc-webhook-token', audiocodes: 'ac-bot-token' };
  const yaml = `
facebook: {verify: v, page-access-token: p, secret: ${secrets.facebook}, api_url: "${api}"}
slack: {slack_token: xoxb-1, slack_signing_secret: ${secrets.slack}, api_url: "${api}"}
telegram: {access_token: "1:a", verify: bot, webhook_url: "https://x.example/w", secret_token: ${secrets.telegram}, api_url: "${api}"}
twilio: {account_sid: AC00000000000000000000000000000000, auth_token: ${secrets.twilio}, twilio_number: "+15005550006", api_url: "${api}"}
twilio_voice: {auth_token: ${secrets.twilio_voice}, account_sid: AC00000000000000000000000000000000}
mattermost: {url: "${api}/api/v4", token: t, webhook_url: "https://x.example/w", webhook_token: ${secrets.mattermost}}
rocketchat: {user: bot, password: p, server_url: "${api}", webhook_token: ${secrets.rocketchat}}
webexteams: {access_token: t, webhook_secret: ${secrets.webex}, api_url: "${api}"}
whatsapp: {phone_number_id: "106540352242922", access_token: t, verify_token: v, app_secret: ${secrets.whatsapp}, api_url: "${api}"}
line: {channel_access_token: t, channel_secret: ${secrets.line}, follow_intent: /greet, api_url: "${api}"}
discord: {public_key: "${discordKey.publicHex}", application_id: "290926444748734465", api_url: "${api}"}
instagram: {verify: v, page-access-token: p, instagram_account_id: "17841405822304914", secret: ${secrets.instagram}, api_url: "${api}"}
botframework: {app_id: fuzz-app, app_password: p, api_url: "${api}", token_url: "${api}/token", openid_metadata: "${api}/openid"}
hangouts: {project_id: "487193750562", api_url: "${api}"}
audiocodes: {token: ${secrets.audiocodes}}
`;
  const channels = await loadChannels(parseCredentialsText(yaml, 'fuzz.yml', {}), []);
  const host = await startTestHost(channels, { answers: [{ text: 'ok', buttons: [{ title: 'b', payload: '/b' }] }] });
  t.teardown(() => host.close());

  /** Headers (and a path) that sign `body` as the platform would; for body-token platforms, the body with its token. */
  async function sign(channel: string, type: string, body: string): Promise<{ body: string; headers: Record<string, string>; path?: string }> {
    const bytes = Buffer.from(body, 'utf8');
    const form = type.startsWith('application/x-www-form-urlencoded');
    switch (channel) {
      case 'facebook':
        return { body, headers: { 'x-hub-signature-256': `sha256=${createHmac('sha256', secrets.facebook).update(bytes).digest('hex')}` } };
      case 'slack': {
        const ts = String(Math.floor(Date.now() / 1000));
        return { body, headers: { 'x-slack-request-timestamp': ts, 'x-slack-signature': `v0=${createHmac('sha256', secrets.slack).update(`v0:${ts}:`).update(bytes).digest('hex')}` } };
      }
      case 'telegram':
        return { body, headers: { 'x-telegram-bot-api-secret-token': secrets.telegram } };
      case 'whatsapp':
        return { body, headers: { 'x-hub-signature-256': `sha256=${createHmac('sha256', secrets.whatsapp).update(bytes).digest('hex')}` } };
      case 'discord': {
        const ts = String(Math.floor(Date.now() / 1000));
        return { body, headers: { 'x-signature-timestamp': ts, 'x-signature-ed25519': ed25519Sign(null, Buffer.concat([Buffer.from(ts), bytes]), discordKey.privateKey).toString('hex') } };
      }
      case 'instagram':
        return { body, headers: { 'x-hub-signature-256': `sha256=${createHmac('sha256', secrets.instagram).update(bytes).digest('hex')}` } };
      case 'webexteams':
        return { body, headers: { 'x-spark-signature': createHmac('sha1', secrets.webex).update(bytes).digest('hex') } };
      case 'line':
        return { body, headers: { 'x-line-signature': createHmac('sha256', secrets.line).update(bytes).digest('base64') } };
      case 'twilio':
      case 'twilio_voice': {
        const token = channel === 'twilio' ? secrets.twilio : secrets.twilio_voice;
        const url = `${host.url}/webhooks/${channel}/webhook`;
        if (form) return { body, headers: { 'x-twilio-signature': twilio.getExpectedTwilioSignature(token, url, Object.fromEntries(new URLSearchParams(body))) } };
        // Other bodies: Twilio puts the body's SHA-256 in the URL and signs the URL alone.
        const query = `bodySHA256=${createHash('sha256').update(bytes).digest('hex')}`;
        return { body, path: `/webhook?${query}`, headers: { 'x-twilio-signature': twilio.getExpectedTwilioSignature(token, `${url}?${query}`, {}) } };
      }
      case 'botframework': {
        let serviceUrl: unknown;
        try {
          serviceUrl = (JSON.parse(body.replace(/^\uFEFF/, '')) as { serviceUrl?: unknown })?.serviceUrl;
        } catch {
          serviceUrl = undefined;
        }
        const token = await connectorToken(key, { aud: 'fuzz-app', serviceurl: typeof serviceUrl === 'string' ? serviceUrl : 'https://smba.trafficmanager.net/teams/' });
        return { body, headers: { authorization: `Bearer ${token}` } };
      }
      case 'hangouts':
        // Google's token does not cover the body: any body with a valid token gets past the check.
        return { body, headers: { authorization: `Bearer ${await chatToken(googleKey, { aud: '487193750562' })}` } };
      case 'audiocodes':
        // VoiceAI Connect's Bearer token does not cover the body: any body with it gets past the check.
        return { body, headers: { authorization: `Bearer ${secrets.audiocodes}` } };
      case 'mattermost':
      case 'rocketchat': {
        const token = secrets[channel];
        if (form) return { body: `${body}${body === '' ? '' : '&'}token=${token}`, headers: {} };
        try {
          const value: unknown = JSON.parse(body.replace(/^\uFEFF/, ''));
          if (value !== null && typeof value === 'object' && !Array.isArray(value)) return { body: JSON.stringify({ ...value, token }), headers: {} };
        } catch {
          // Not JSON: sent as it is.
        }
        return { body, headers: {} };
      }
      default:
        throw new Error(`no signer for ${channel}`);
    }
  }
  /** Channels whose signature covers headers and bytes only: a signed request must get past the check. */
  const byteSigned = new Set(['facebook', 'slack', 'telegram', 'webexteams', 'whatsapp', 'line', 'discord', 'instagram', 'hangouts', 'audiocodes']);

  const request = fc.record({
    channel: fc.constantFrom(...channels.map((c) => c.name())),
    type: fc.constantFrom('application/json', 'application/json; charset=iso-8859-1', 'application/x-www-form-urlencoded', 'text/plain'),
    body: bodies(),
    signed: fc.boolean(),
  });
  let signedPastCheck = 0;
  let unsignedRefused = 0;
  await fc.assert(
    fc.asyncProperty(request, async ({ channel, type, body, signed }) => {
      const sent = signed ? await sign(channel, type, body) : { body, headers: {} as Record<string, string>, path: undefined };
      const response = await host.post(channel, sent.body, { headers: { 'content-type': type, ...sent.headers }, path: sent.path });
      const what = `${channel} ${signed ? 'signed' : 'unsigned'} ${type} ${JSON.stringify(sent.body).slice(0, 200)}`;
      if (response.status >= 500) throw new Error(`${what} answered ${response.status}: ${response.text}`);
      if (/\n\s+at /.test(response.text)) throw new Error(`${what} leaked a stack trace`);
      if (signed && byteSigned.has(channel)) {
        if (response.status === 401) throw new Error(`${what}: signed, yet refused as unverified`);
        signedPastCheck++;
      }
      if (!signed && channel !== 'mattermost' && channel !== 'rocketchat') {
        if (response.status !== 401) throw new Error(`${what}: unsigned, yet answered ${response.status}`);
        unsignedRefused++;
      }
    }),
    { seed: 20261202, numRuns: 1500 },
  );
  t.true(signedPastCheck > 200, `${signedPastCheck} signed requests got past verification`);
  t.true(unsignedRefused > 200, `${unsignedRefused} unsigned requests refused`);
  const crashes = host.logs.lines.filter((line) => /unexpected error while handling a request/.test(line));
  t.deepEqual(crashes, []);
  t.is((await host.request('/health')).status, 200);
});


test('jambonz: random frames over its WebSocket never crash the channel or close the call; random credentials are refused with 401', async (t) => {
  const yaml = 'jambonz: {username: switchboard, password: jambonz-app-password}\n';
  const channels = await loadChannels(parseCredentialsText(yaml, 'fuzz.yml', {}), []);
  const host = await startTestHost(channels, { answers: [{ text: 'ok', buttons: [{ title: 'b', payload: '/b' }] }, { custom: { hangup: true } }] });
  t.teardown(() => host.close());
  const url = `${host.url.replace(/^http/, 'ws')}/webhooks/jambonz/websocket`;
  const good = `Basic ${Buffer.from('switchboard:jambonz-app-password').toString('base64')}`;
  const connect = (authorization?: string) =>
    new Promise<{ status: number; ws: WebSocket }>((resolve) => {
      const ws = new WebSocket(url, ['ws.jambonz.org'], { headers: authorization === undefined ? {} : { authorization } });
      ws.once('open', () => resolve({ status: 101, ws }));
      ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0, ws }));
      ws.once('error', () => resolve({ status: 0, ws }));
    });

  // Shaped like jambonz's messages, with random values where it matters.
  const frame = fc.oneof(
    { arbitrary: fc.json(), weight: 1 },
    { arbitrary: fc.string(), weight: 1 },
    {
      weight: 6,
      arbitrary: fc
      .record(
        {
          type: fc.constantFrom('session:new', 'session:reconnect', 'verb:hook', 'verb:status', 'call:status', 'jambonz:error', 'ack', 'command'),
          msgid: fc.oneof({ arbitrary: fc.string({ minLength: 1, maxLength: 30 }), weight: 5 }, { arbitrary: fc.jsonValue(), weight: 1 }),
          call_sid: fc.oneof({ arbitrary: fc.constantFrom('9fb35c28-9688-4531-943c-e280b04f3adf', 'c2'), weight: 5 }, { arbitrary: fc.string({ maxLength: 300 }), weight: 1 }, { arbitrary: fc.jsonValue(), weight: 1 }),
          hook: fc.oneof(fc.constant('/gather'), fc.jsonValue()),
          data: fc.oneof(
            fc.jsonValue(),
            fc.record(
              {
                reason: fc.oneof(fc.constantFrom('speechDetected', 'dtmfDetected', 'timeout'), fc.jsonValue()),
                speech: fc.oneof(fc.jsonValue(), fc.record({ is_final: fc.jsonValue(), alternatives: fc.array(fc.oneof(fc.jsonValue(), fc.record({ transcript: fc.jsonValue(), confidence: fc.jsonValue() }))) }, { requiredKeys: [] })),
                digits: fc.jsonValue(),
                call_status: fc.oneof(fc.constant('completed'), fc.jsonValue()),
                from: fc.jsonValue(),
                to: fc.jsonValue(),
                sip: fc.jsonValue(),
              },
              { requiredKeys: [] },
            ),
          ),
        },
        { requiredKeys: ['type'] },
      )
      .map((v) => JSON.stringify(v)),
    },
  );
  const { status, ws } = await connect(good);
  t.is(status, 101);
  t.teardown(() => ws.terminate());
  let acks = 0;
  ws.on('message', () => acks++);
  await fc.assert(
    fc.asyncProperty(frame, fc.boolean(), async (text, binary) => {
      ws.send(binary ? Buffer.from(text) : text, { binary });
      await new Promise((resolve) => setTimeout(resolve, 2));
      if (ws.readyState !== WebSocket.OPEN) throw new Error(`the channel closed the connection after ${JSON.stringify(text).slice(0, 200)}`);
    }),
    { seed: 20261202, numRuns: 600 },
  );
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.true(acks > 20, `${acks} acks sent`);

  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.string(), fc.string().map((s) => `Basic ${Buffer.from(s).toString('base64')}`), fc.constant(undefined)), async (authorization) => {
      if (authorization === good) return;
      const attempt = await connect(authorization);
      attempt.ws.terminate();
      if (attempt.status !== 401 && !(attempt.status === 0 && /[^\t\x20-\x7e]/.test(authorization ?? ''))) throw new Error(`Authorization ${JSON.stringify(authorization)} answered ${attempt.status}`);
    }),
    { seed: 20261202, numRuns: 100 },
  );
  const failures = host.logs.lines.filter((line) => /handling a message failed|unexpected error|"level":(50|60)/.test(line));
  t.deepEqual(failures, []);
  t.is((await host.request('/health')).status, 200);
});
