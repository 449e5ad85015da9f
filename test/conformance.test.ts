// Every built-in channel passes the conformance kit a third-party channel author runs (switchboard/testing), and a
// deliberately broken channel fails it with readable messages.
import test from 'ava';
import { PassThrough } from 'node:stream';
import { generateKeyPairSync, sign as ed25519Sign } from 'node:crypto';
import { CollectingOutputChannel, InputChannel, OutputChannel as OutputChannelBase, Router, UserMessage, credentialsSchema, jsonBody, secret, verificationSecret, z, type HttpClient, type OnNewMessage, type OutputChannel, type ReplyAddress } from 'switchboard';
import { conformance, ConformanceError } from 'switchboard/testing';
import { hmac } from 'switchboard';
import RestInput from '../channels/rest/index.js';
import CallbackInput from '../channels/callback/index.js';
import ConsoleInput from '../channels/console/index.js';
import { ConsoleOutput } from '../channels/console/output.js';
import FacebookInput from '../channels/facebook/index.js';
import SlackInput from '../channels/slack/index.js';
import TelegramInput from '../channels/telegram/index.js';
import TwilioInput from '../channels/twilio/index.js';
import TwilioVoiceInput from '../channels/twilio_voice/index.js';
import WebexTeamsInput from '../channels/webexteams/index.js';
import WhatsAppInput from '../channels/whatsapp/index.js';
import DiscordInput from '../channels/discord/index.js';
import InstagramInput from '../channels/instagram/index.js';
import SocketIOInput from '../channels/socketio/index.js';
import JambonzInput, { JambonzOutput } from '../channels/jambonz/index.js';
import BotFrameworkInput from '../channels/botframework/index.js';
import { connectorKey, connectorToken } from './channels/botframework.tokens.js';
import MattermostInput from '../channels/mattermost/index.js';
import HangoutsInput from '../channels/hangouts/index.js';
import AudiocodesInput from '../channels/audiocodes/index.js';
import { certificates, chatKey, chatToken } from './channels/hangouts.tokens.js';
import RocketChatInput from '../channels/rocketchat/index.js';
import LineInput from '../channels/line/index.js';

test('rest passes conformance', async (t) => {
  const report = await conformance(RestInput, { credentials: {}, validRequest: { body: { sender: 'u1', message: 'hello' } } });
  t.true(report.ok);
  t.true(report.checks.length >= 15, `${report.checks.length} checks`);
});

test('callback passes conformance', async (t) => {
  const report = await conformance(CallbackInput, {
    credentials: (platform) => ({ url: `${platform}/answers` }),
    validRequest: { body: { sender: 'u1', message: 'hello' } },
  });
  t.true(report.ok);
  t.truthy(report.checks.find((c) => c.name === 'fromCredentials rejects a section without "url", naming it')?.ok);
});

test('console passes conformance', async (t) => {
  const report = await conformance(ConsoleInput, {
    credentials: {},
    webhook: false,
    prepare: (channel) => {
      (channel as InputChannel & { streams: unknown }).streams = { input: new PassThrough(), output: new PassThrough(), terminal: false };
    },
    output: () => new ConsoleOutput(new PassThrough()),
  });
  t.true(report.ok);
});

test('facebook passes conformance', async (t) => {
  const secretValue = 'app-secret-conformance';
  const report = await conformance(FacebookInput, {
    credentials: { verify: 'verify-token', secret: secretValue, 'page-access-token': 'page-token' },
    validRequest: {
      body: {
        object: 'page',
        entry: [{ id: 'PAGE_ID', time: Date.now(), messaging: [{ sender: { id: 'USER_ID' }, recipient: { id: 'PAGE_ID' }, timestamp: 1458692752478, message: { mid: 'mid.conformance', text: 'hello' } }] }],
      },
    },
    sign: (raw) => ({ 'x-hub-signature-256': `sha256=${hmac('sha256', secretValue, raw)}` }),
  });
  t.true(report.ok);
});

test('whatsapp passes conformance', async (t) => {
  const secretValue = 'wa-app-secret-conformance';
  const report = await conformance(WhatsAppInput, {
    credentials: { phone_number_id: '106540352242922', access_token: 'wa-token', app_secret: secretValue, verify_token: 'verify-token' },
    validRequest: {
      body: {
        object: 'whatsapp_business_account',
        entry: [
          {
            id: '102290129340398',
            changes: [
              {
                field: 'messages',
                value: {
                  messaging_product: 'whatsapp',
                  metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
                  contacts: [{ profile: { name: 'Kerry Fisher' }, wa_id: '16505551234' }],
                  messages: [{ from: '16505551234', id: 'wamid.conformance', timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: 'hello' } }],
                },
              },
            ],
          },
        ],
      },
    },
    sign: (raw) => ({ 'x-hub-signature-256': `sha256=${hmac('sha256', secretValue, raw)}` }),
  });
  t.true(report.ok);
});

test('discord passes conformance', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicHex = Buffer.from((publicKey.export({ format: 'jwk' }) as { x: string }).x, 'base64url').toString('hex');
  const report = await conformance(DiscordInput, {
    credentials: { public_key: publicHex, application_id: '290926444748734465' },
    validRequest: {
      body: {
        id: '786008729715212338',
        application_id: '290926444748734465',
        type: 2,
        token: 'aW50ZXJhY3Rpb246Y29uZm9ybWFuY2U',
        version: 1,
        guild_id: '290926798626357999',
        channel_id: '645027906669510667',
        member: { user: { id: '53908232506183680', username: 'Mason' }, roles: [], permissions: '2147483647' },
        data: { id: '771825006014889984', name: 'ask', type: 1, options: [{ type: 3, name: 'text', value: 'hello' }] },
      },
    },
    sign: (raw) => {
      const ts = String(Math.floor(Date.now() / 1000));
      return { 'x-signature-timestamp': ts, 'x-signature-ed25519': ed25519Sign(null, Buffer.from(ts + raw), privateKey).toString('hex') };
    },
  });
  t.true(report.ok);
});

test('instagram passes conformance', async (t) => {
  const secretValue = 'ig-app-secret-conformance';
  const report = await conformance(InstagramInput, {
    credentials: { verify: 'verify-token', secret: secretValue, 'page-access-token': 'page-token', instagram_account_id: '17841405822304914' },
    validRequest: {
      body: {
        object: 'instagram',
        entry: [
          {
            id: '17841405822304914',
            time: Date.now(),
            messaging: [{ sender: { id: '1254459154682919' }, recipient: { id: '17841405822304914' }, timestamp: 1569262485349, message: { mid: 'aWdfZAG1fconformance', text: 'hello' } }],
          },
        ],
      },
    },
    sign: (raw) => ({ 'x-hub-signature-256': `sha256=${hmac('sha256', secretValue, raw)}` }),
  });
  t.true(report.ok);
});

test('slack passes conformance', async (t) => {
  const signing = 'slack-signing-secret';
  const report = await conformance(SlackInput, {
    credentials: { slack_token: 'xoxb-conformance', slack_signing_secret: signing },
    // chat.postMessage answers with the message's channel and ts (what chat.update and chat.delete need).
    platform: (request) => (request.path === '/chat.postMessage' ? { body: { ok: true, channel: 'D024BE91L', ts: '1503435956.000247' } } : undefined),
    validRequest: {
      body: {
        token: 'x',
        team_id: 'T1',
        api_app_id: 'A1',
        type: 'event_callback',
        event_id: 'Ev_conformance',
        event_time: 1700000000,
        authorizations: [{ user_id: 'U0BOT', is_bot: true }],
        event: { type: 'message', channel: 'D024BE91L', channel_type: 'im', user: 'U2147483697', text: 'hello', ts: '1355517523.000005' },
      },
    },
    sign: (raw) => {
      const ts = String(Math.floor(Date.now() / 1000));
      return { 'x-slack-request-timestamp': ts, 'x-slack-signature': `v0=${hmac('sha256', signing, `v0:${ts}:${raw}`)}` };
    },
  });
  t.true(report.ok);
});

test('a deliberately broken channel fails conformance with readable messages', async (t) => {
  class BrokenInput extends InputChannel {
    static override credentials = credentialsSchema({ token: secret(z.string()), signing_secret: verificationSecret() });
    static instances = 0;
    private readonly instance = ++BrokenInput.instances;
    name(): string {
      // Unstable: a second instance of the same class answers another prefix.
      return this.instance === 1 ? 'broken' : 'broken-too';
    }
    router(_onNewMessage: OnNewMessage): Router {
      const router = new Router();
      // No health route; the webhook throws on anything (a 500) and never checks a signature.
      router.post('/webhook', () => {
        throw new Error('not parsed');
      });
      return router;
    }
  }
  const error = await t.throwsAsync(
    conformance(BrokenInput, { credentials: { token: 't', signing_secret: 's' }, validRequest: { body: { text: 'hi' } }, sign: () => ({ 'x-sig': 'x' }) }),
    { instanceOf: ConformanceError },
  );
  const message = error!.message;
  t.regex(message, /^channel "broken" \(BrokenInput\) fails \d+ of \d+ conformance checks:/);
  t.regex(message, /✘ name\(\) is stable: name\(\) returned "broken", then "broken" and "broken-too"/);
  t.regex(message, /✘ GET \/ \(health\) answers 200: got 40[45]/);
  t.regex(message, /✘ a request without a signature is refused with 401: got 500/);
  t.regex(message, /✘ a valid request is accepted \(2xx\) and reaches the bot: got 500/);
  t.regex(message, /✘ the output channel can be checked: no validRequest that reaches the bot/);
  t.regex(message, /✘ no unexpected error was logged: logged: .*not parsed/);
  // Each failure on its own line, so a test runner shows them all.
  t.true(message.split('\n').filter((line) => line.startsWith('  ✘ ')).length >= 6);
});

test('conformance can return the report instead of throwing', async (t) => {
  class NoHealth extends InputChannel {
    name() {
      return 'nohealth';
    }
    router() {
      return new Router();
    }
  }
  const report = await conformance(NoHealth, { credentials: {}, webhook: false, throwOnFailure: false });
  t.false(report.ok);
  t.deepEqual(
    report.failures.map((f) => f.name),
    ['GET / (health) answers 200', 'the output channel can be checked'],
  );
});

test('telegram passes conformance', async (t) => {
  const token = '123456:ABC-conformance';
  const report = await conformance(TelegramInput, {
    credentials: { access_token: token, verify: 'conformance_bot', webhook_url: 'https://bot.example.com/webhooks/telegram/webhook' },
    // sendMessage answers with the sent Message (its message_id is what editMessageText and deleteMessage need).
    platform: (request) => (request.path.endsWith('/sendMessage') ? { body: { ok: true, result: { message_id: 4711, date: 1441645532, chat: { id: 1111111, type: 'private' } } } } : undefined),
    validRequest: {
      body: {
        update_id: 10000,
        message: { message_id: 1365, date: 1441645532, chat: { id: 1111111, type: 'private', first_name: 'Test' }, from: { id: 1111111, is_bot: false, first_name: 'Test' }, text: 'hello' },
      },
    },
    sign: () => ({ 'x-telegram-bot-api-secret-token': hmac('sha256', token, 'switchboard-telegram-secret-token') }),
  });
  t.true(report.ok);
});

test('twilio passes conformance', async (t) => {
  const authToken = 'twilio-auth-token-conformance';
  const report = await conformance(TwilioInput, {
    credentials: { account_sid: `AC${'0'.repeat(32)}`, auth_token: authToken, twilio_number: '+15005550006' },
    validRequest: {
      body: new URLSearchParams({ MessageSid: 'SM' + 'a'.repeat(32), AccountSid: `AC${'0'.repeat(32)}`, From: '+14155550100', To: '+15005550006', Body: 'hello', NumMedia: '0' }),
    },
    sign: (raw, { url }) => {
      // As Twilio signs: a form's fields with the URL; for a JSON body (the kit's malformed one) the URL alone.
      const form = !raw.trimStart().startsWith('{');
      const params = form ? [...new URLSearchParams(raw)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : [];
      return { 'x-twilio-signature': hmac('sha1', authToken, url + params.map(([k, v]) => k + v).join(''), 'base64') };
    },
  });
  t.true(report.ok);
});

test('twilio_voice passes conformance', async (t) => {
  const authToken = 'twilio-voice-auth-token-conformance';
  const report = await conformance(TwilioVoiceInput, {
    credentials: { auth_token: authToken },
    validRequest: {
      body: new URLSearchParams({ CallSid: 'CA' + 'a'.repeat(32), AccountSid: `AC${'0'.repeat(32)}`, From: '+14155550100', To: '+15005550006', CallStatus: 'ringing', Direction: 'inbound', ApiVersion: '2010-04-01' }),
    },
    sign: (raw, { url }) => {
      // As Twilio signs: a form's fields with the URL; for a JSON body (the kit's malformed one) the URL alone.
      const form = !raw.trimStart().startsWith('{');
      const params = form ? [...new URLSearchParams(raw)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : [];
      return { 'x-twilio-signature': hmac('sha1', authToken, url + params.map(([k, v]) => k + v).join(''), 'base64') };
    },
  });
  t.true(report.ok);
});

test('webexteams passes conformance', async (t) => {
  const webhookSecret = 'webex-secret-conformance';
  const report = await conformance(WebexTeamsInput, {
    credentials: { access_token: 'webex-token', webhook_secret: webhookSecret },
    platform: (request) => {
      if (request.path.endsWith('/people/me')) return { body: { id: 'BOT_PERSON_ID' } };
      if (request.method === 'GET' && request.path.includes('/messages/')) {
        return { body: { id: 'MSG_ID', roomId: 'ROOM_ID', roomType: 'direct', text: 'hello', personId: 'USER_PERSON_ID', personEmail: 'user@example.com' } };
      }
      return undefined;
    },
    validRequest: {
      body: {
        id: 'WEBHOOK_ID',
        name: 'switchboard',
        resource: 'messages',
        event: 'created',
        data: { id: 'MSG_ID', roomId: 'ROOM_ID', roomType: 'direct', personId: 'USER_PERSON_ID', personEmail: 'user@example.com', created: new Date().toISOString() },
      },
    },
    sign: (raw) => ({ 'x-spark-signature': hmac('sha1', webhookSecret, raw) }),
  });
  t.true(report.ok);
});

test('socketio passes conformance', async (t) => {
  const report = await conformance(SocketIOInput, {
    credentials: { session_persistence: true },
    webhook: false,
    output: (channel) => (channel as unknown as { output: OutputChannel }).output,
  });
  t.true(report.ok);
});

test('jambonz passes conformance', async (t) => {
  // A WebSocket channel: no POST /webhook; its frames are checked by its data cases and the fuzz suite.
  const report = await conformance(JambonzInput, {
    credentials: { username: 'switchboard', password: 'jambonz-app-password' },
    webhook: false,
    output: () => new JambonzOutput(),
  });
  t.true(report.ok);
  t.truthy(report.checks.find((c) => c.name === 'fromCredentials rejects a section without "password", naming it')?.ok);
});

test('botframework passes conformance', async (t) => {
  // A token as the Bot Connector mints it: claims aud, exp, iss, nbf and serviceurl (all lower case).
  const key = connectorKey('conformance-key', ['msteams']);
  const jwk = key.jwk;
  const appId = '00000000-0000-4000-8000-00000000c0f0';
  const serviceUrl = 'https://smba.trafficmanager.net/amer/';
  const token = await connectorToken(key, { aud: appId, serviceurl: serviceUrl });
  let platformUrl = '';
  const report = await conformance(BotFrameworkInput, {
    credentials: (platform) => {
      platformUrl = platform;
      return { app_id: appId, app_password: 'conformance-password', token_url: `${platform}/token`, openid_metadata: `${platform}/openid` };
    },
    platform: (request) => {
      if (request.path === '/openid') return { body: { issuer: 'https://api.botframework.com', jwks_uri: `${platformUrl}/keys` } };
      if (request.path === '/keys') return { body: { keys: [jwk] } };
      if (request.path === '/token') return { body: { token_type: 'Bearer', expires_in: 3599, access_token: 'conformance-bot-token' } };
      return undefined;
    },
    validRequest: {
      body: {
        type: 'message',
        id: '1732536000000',
        timestamp: new Date().toISOString(),
        serviceUrl,
        channelId: 'msteams',
        from: { id: '29:conformance-user', name: 'Megan Bowen' },
        conversation: { id: 'a:conformance-conversation' },
        recipient: { id: `28:${appId}`, name: 'Switchboard' },
        text: 'hello',
      },
    },
    sign: () => ({ authorization: `Bearer ${token}` }),
  });
  t.true(report.ok);
});

test('hangouts passes conformance', async (t) => {
  // Google's certificates served by the kit's fake platform (api_url), a token as Google Chat mints it.
  const key = chatKey('conformance-kid');
  const projectNumber = '487193750562';
  const token = await chatToken(key, { aud: projectNumber });
  const report = await conformance(HangoutsInput, {
    credentials: { project_id: projectNumber },
    platform: (request) => (request.path === '/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com' ? { body: certificates(key) } : undefined),
    validRequest: {
      body: {
        type: 'MESSAGE',
        eventTime: new Date().toISOString(),
        space: { name: 'spaces/AAAAdMq1nN0', type: 'DM', spaceType: 'DIRECT_MESSAGE', singleUserBotDm: true },
        message: {
          name: 'spaces/AAAAdMq1nN0/messages/CCCCCCCCCCC.CCCCCCCCCCC',
          sender: { name: 'users/12345678901234567890', displayName: 'Izumi', type: 'HUMAN' },
          text: 'hello',
          argumentText: 'hello',
          thread: { name: 'spaces/AAAAdMq1nN0/threads/BBBBBBBBBBB' },
        },
        user: { name: 'users/12345678901234567890', displayName: 'Izumi', type: 'HUMAN' },
      },
    },
    sign: () => ({ authorization: `Bearer ${token}` }),
  });
  t.true(report.ok);
});

test('audiocodes passes conformance', async (t) => {
  // The activities of a conversation VoiceAI Connect opened before (its create request is not a bot message).
  const conversation = '4a5e3b2c-93f7-4b7c-8f04-c4ef8b3d0a61';
  const token = 'ac-conformance-token';
  const report = await conformance(AudiocodesInput, {
    credentials: { token },
    prepare: (channel) => (channel as AudiocodesInput).openConversation(conversation),
    validRequest: {
      path: `/conversation/${conversation}/activities`,
      body: { conversation, activities: [{ id: '3f6a2b1c-5d4e-4f3a-9b8c-7d6e5f4a3b02', timestamp: new Date().toISOString(), language: 'en-US', type: 'message', text: 'hello', parameters: { confidence: 0.93 } }] },
    },
    sign: () => ({ authorization: `Bearer ${token}` }),
  });
  t.true(report.ok);
});

test('mattermost passes conformance', async (t) => {
  const webhookToken = 'mattermost-webhook-token-conformance';
  const report = await conformance(MattermostInput, {
    credentials: { url: 'https://chat.example.com/api/v4', token: 'mattermost-bot-token', webhook_url: 'https://bot.example.com/webhooks/mattermost/webhook', webhook_token: webhookToken },
    platform: (request) => (request.path.endsWith('/users/me') ? { body: { id: 'bq6dkzc9ijbyuxrbfzmrxwdnhe', username: 'switchboard' } } : undefined),
    validRequest: {
      // Mattermost sends the token in the body; a relay may move it to `Authorization: Token …`, which sign() uses.
      body: { team_id: 'kwoknj9nwpypzgzy78wkw516qe', team_domain: 'someteam', channel_id: 'hawos4dqtby53pd64o4a4cmeoo', channel_name: 'town-square', timestamp: 1445532266, user_id: 'rnina9994bde8mua79zqcg5hmo', user_name: 'somename', post_id: 'axdygg1957njfe5pu38saikdho', text: '@switchboard hello', trigger_word: '@switchboard' },
    },
    sign: () => ({ authorization: `Token ${webhookToken}` }),
  });
  t.true(report.ok);
});

test('rocketchat passes conformance', async (t) => {
  const webhookToken = 'rocketchat-webhook-token-conformance';
  const report = await conformance(RocketChatInput, {
    credentials: { user: 'switchboard', password: 'bot-password', server_url: 'https://chat.example.com', webhook_token: webhookToken },
    platform: (request) => {
      if (request.path.endsWith('/api/v1/login')) return { body: { status: 'success', data: { authToken: 'rc-auth-token', userId: 'aobEdbYhXfu5hkeqG' } } };
      // chat.postMessage answers with the message (its _id and room are what chat.update and chat.delete need).
      if (request.path.endsWith('/api/v1/chat.postMessage')) return { body: { success: true, message: { _id: '7aDSXtjMA3KPLxLjt', rid: 'GENERAL', msg: 'x' } } };
      return undefined;
    },
    validRequest: {
      // An Omnichannel webhook: its secret comes in the X-RocketChat-Livechat-Token header (integrations put it in the body).
      body: {
        _id: 'hFK3xNbQyXgTm5XZP',
        type: 'Message',
        visitor: { _id: 'qWgBxNRgpXPfHwA5E', token: 'visitor-token', name: 'Visitor', username: 'guest-1' },
        messages: [{ u: { _id: 'qWgBxNRgpXPfHwA5E', username: 'guest-1' }, msg: 'hello', ts: '2023-11-22T10:01:02.514Z', _id: 'ZXy2rLkPqTa9bN3sW' }],
      },
    },
    sign: () => ({ 'x-rocketchat-livechat-token': webhookToken }),
  });
  t.true(report.ok);
});

test('line passes conformance', async (t) => {
  const channelSecret = 'line-channel-secret-conformance';
  const report = await conformance(LineInput, {
    credentials: { channel_secret: channelSecret, channel_access_token: 'line-access-token-conformance' },
    validRequest: {
      body: {
        destination: 'Ub3a2f0c7e5d1234567890abcdef01234',
        events: [
          {
            replyToken: 'nHuyWiB7yP5Zw52FIkcQobQuGDXCTA',
            type: 'message',
            mode: 'active',
            timestamp: Date.now(),
            source: { type: 'user', userId: 'U4af4980629e3b7b0cd2d8d6e7d3c2f91' },
            webhookEventId: '01FZ74A0TDDPYRVKNK77XKC3ZR',
            deliveryContext: { isRedelivery: false },
            message: { id: '444573844083572737', type: 'text', quoteToken: 'q3Plxr4AgKd2i5yUEQY5aDUmNRMRAnEqd8dZ8fJsOB8TnBtCpZcGZU', text: 'hello' },
          },
        ],
      },
    },
    sign: (raw) => ({ 'x-line-signature': hmac('sha256', channelSecret, raw, 'base64') }),
  });
  t.true(report.ok);
});

test('conformance catches a reply address that is not plain data, leaks a secret, or does not lead back to the same place', async (t) => {
  // A channel that attaches a live output sending to the request's room, and an address that forgot the room, holds a
  // Date (a string after JSON) and the API token.
  class RoomOutput extends OutputChannelBase {
    constructor(private readonly apiUrl: string, private readonly room: string) {
      super();
    }
    async sendTextMessage(recipientId: string, text: string): Promise<void> {
      await fetch(`${this.apiUrl}/rooms/${this.room}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to: recipientId, text }) });
    }
  }
  class SloppyInput extends InputChannel<{ token: string; api_url: string }> {
    static override credentials = credentialsSchema({ token: secret(z.string().min(1)), api_url: z.string() });
    name(): string {
      return 'sloppy';
    }
    override outputChannel(replyTo: ReplyAddress): OutputChannel {
      return new RoomOutput(this.credentials.api_url, typeof replyTo.room === 'string' ? replyTo.room : 'lobby');
    }
    router(onNewMessage: OnNewMessage): Router {
      const router = this.newRouter();
      router.post('/webhook', async (ctx) => {
        const body = jsonBody(ctx) as { from: string; room: string; text: string };
        const replyTo = { at: new Date(0), token: this.credentials.token } as unknown as ReplyAddress;
        await onNewMessage.enqueue(new UserMessage({ text: body.text, senderId: body.from, output: new RoomOutput(this.credentials.api_url, body.room), replyTo, inputChannel: this.name() }));
        ctx.body = 'ok';
      });
      return router;
    }
  }
  const error = await t.throwsAsync(
    conformance(SloppyInput, { credentials: { token: 'sloppy-api-token' }, validRequest: { body: { from: 'u1', room: 'r42', text: 'hi' } } }),
    { instanceOf: ConformanceError },
  );
  const message = error!.message;
  t.regex(message, /✘ a message with a reply address survives a JSON round trip: it came back different in replyTo \(replyTo\.at\)/);
  t.regex(message, /✘ the reply address carries no secret of the credentials/);
  t.regex(message, /✘ answers to the round-tripped message make the same platform call as the original: expected .*rooms\/r42\/messages.*, got .*rooms\/lobby\/messages/);
  t.notRegex(message, /sloppy-api-token/);
});

test('conformance requires outputChannel(replyTo) of a channel whose messages carry an address', async (t) => {
  class NoRebuildInput extends InputChannel {
    name(): string {
      return 'norebuild';
    }
    router(onNewMessage: OnNewMessage): Router {
      const router = this.newRouter();
      router.post('/webhook', async (ctx) => {
        await onNewMessage.enqueue(new UserMessage({ text: 'hi', senderId: 'u1', output: new CollectingOutputChannel(), replyTo: { room: 'r1' }, inputChannel: this.name() }));
        ctx.body = 'ok';
      });
      return router;
    }
  }
  const report = await conformance(NoRebuildInput, { credentials: {}, validRequest: { body: {} }, throwOnFailure: false });
  t.false(report.ok, JSON.stringify(report.failures));
  t.truthy(report.failures.find((c) => c.name === 'the channel rebuilds the output from the reply address' && /no outputChannel\(replyTo\)/.test(c.message ?? '')), JSON.stringify(report.failures));
  t.truthy(report.checks.find((c) => c.name === 'a message with a reply address survives a JSON round trip')?.ok, JSON.stringify(report.failures));
});

test('conformance requires an output with editMessage to report what it sends, and to call the platform to change it', async (t) => {
  class Forgetful extends OutputChannelBase {
    constructor(private readonly http: HttpClient, private readonly api: string, private readonly report: boolean) {
      super();
    }
    async sendTextMessage(recipientId: string, text: string): Promise<void> {
      await this.http.post(`${this.api}/send`, { to: recipientId, text });
      if (this.report) this.reportSent({ id: 'm1', text: true });
    }
    override async editMessage(): Promise<void> {
      // Changes nothing on the platform.
    }
  }
  const make = (report: boolean) => class EditInput extends InputChannel {
    static override credentials = credentialsSchema({ api_url: z.string() });
    name(): string {
      return 'edits';
    }
    router(): Router {
      return this.newRouter();
    }
  };
  for (const report of [false, true]) {
    const Input = make(report);
    const result = await conformance(Input, {
      credentials: { api_url: 'http://unused' },
      webhook: false,
      output: (channel) => new Forgetful(channel.http, String((channel.credentials as { api_url: string }).api_url), report),
      throwOnFailure: false,
    });
    const failure = result.failures.find((c) => c.name.startsWith('an output that edits or deletes'));
    t.regex(failure?.message ?? '', report ? /editMessage made no platform call/ : /reported no message/, JSON.stringify(result.failures));
  }
});
