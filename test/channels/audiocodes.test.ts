import test, { type ExecutionContext } from 'ava';
import { UserMessage, type BotMessage } from 'switchboard';
import AudiocodesInput, { AudiocodesOutput, parseActivity, verifyToken } from '../../channels/audiocodes/index.js';
import { readOutButtons, spokenText } from 'switchboard';
import { runCallCases, runChannelCases, startServer, ScriptedBot, type CallStep, type ChannelCase } from '../harness.js';

const TOKEN = 'ac-bot-token-5f0c1e9a';
const CONVERSATION = '4a5e3b2c-93f7-4b7c-8f04-c4ef8b3d0a61';
const auth = () => ({ authorization: `Bearer ${TOKEN}` });
const credentials = { token: TOKEN };
const APOLOGY: BotMessage[] = [{ text: 'Sorry, I need a moment. Please say that again.' }];

// --- requests shaped as AudioCodes' Bot API documentation shows them (techdocs.audiocodes.com, VoiceAI Connect:
// "Bot API" conversation flow, "Receiving no user input notification", "Receiving call disconnect notification")

/** VoiceAI Connect creates a conversation at the bot URL. */
const create = { conversation: CONVERSATION, id: 'e2c1e0b5-1d2b-4a4f-9b0f-5b6bcd7f3e10', timestamp: '2026-12-02T11:00:00.000Z' };

const at = (n: number) => `2026-12-02T11:00:${String(n).padStart(2, '0')}.000Z`;

/** The call starts: the `start` event, with the call's details. */
const start = {
  conversation: CONVERSATION,
  activities: [
    {
      id: '0d7d8f3a-7b1e-4b21-9a55-1f2f3c4d5e01',
      timestamp: at(1),
      language: 'en-US',
      type: 'event',
      name: 'start',
      parameters: {
        locale: 'en-US',
        caller: '+12345678901',
        callerHost: '10.20.30.40',
        callee: '+18005550100',
        calleeHost: '10.20.30.41',
        callerDisplayName: 'Izumi',
        vaigConversationId: 'a3b9c1d2e3f4',
      },
    },
  ],
};

/** What the caller said, with the speech recogniser's confidence. */
const said = (id: string, text: string, confidence = 0.93) => ({
  conversation: CONVERSATION,
  activities: [{ id, timestamp: at(5), language: 'en-US', type: 'message', text, parameters: { confidence, recognitionOutput: { RecognitionStatus: 'Success' } } }],
});

/** The caller said nothing for `userNoInputTimeoutMS` (sendEventsToBot: ["noUserInput"]). */
const noInput = { conversation: CONVERSATION, activities: [{ id: '7c1d9e2f-0a3b-4c5d-8e9f-0a1b2c3d4e05', timestamp: at(30), language: 'en-US', type: 'event', name: 'noUserInput', value: 1 }] };

const disconnect = { conversation: CONVERSATION, reason: 'Client Side', reasonCode: 'client-disconnected' };

const base = `/conversation/${CONVERSATION}`;

/** Checks the activities of a response: each has a fresh `id` (UUID) and `timestamp` (ISO 8601), the rest exactly. */
function activities(...expected: Array<Record<string, unknown>>) {
  return (t: ExecutionContext, response: { json: unknown }) => {
    const body = response.json as { conversation: string; activities: Array<Record<string, unknown>> };
    t.is(body.conversation, CONVERSATION);
    for (const activity of body.activities) {
      t.regex(String(activity.id), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      t.regex(String(activity.timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    t.deepEqual(body.activities.map(({ id: _id, timestamp: _ts, ...rest }) => rest), expected);
  };
}

const opened: CallStep = {
  label: 'VoiceAI Connect creates the conversation',
  body: create,
  headers: auth(),
  status: 200,
  response: { activitiesURL: `conversation/${CONVERSATION}/activities`, disconnectURL: `conversation/${CONVERSATION}/disconnect`, refreshURL: `conversation/${CONVERSATION}/keepalive`, expiresSeconds: 120 },
  received: [],
};

runCallCases(test, {
  channel: AudiocodesInput,
  credentials,
  calls: [
    {
      label: 'a whole call: start → greeting → two turns with buttons read out → no-input reprompt → hang-up → disconnect',
      steps: [
        opened,
        {
          label: 'the call starts: the bot gets /session_start with the call parameters and greets',
          path: `${base}/activities`,
          body: start,
          headers: auth(),
          answers: [{ text: 'Hi! Welcome to Moodbot 😀' }, { text: 'How are you feeling today?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }] }],
          status: 200,
          response: activities({ type: 'message', text: 'Hi! Welcome to Moodbot' }, { type: 'message', text: 'How are you feeling today? great, sad' }),
          received: [
            {
              text: '/session_start',
              senderId: CONVERSATION,
              inputChannel: 'audiocodes',
              messageId: `${CONVERSATION}/0d7d8f3a-7b1e-4b21-9a55-1f2f3c4d5e01`,
              metadata: { call_id: 'a3b9c1d2e3f4', user_phone: '+12345678901', bot_phone: '+18005550100', user_name: 'Izumi', user_host: '10.20.30.40', bot_host: '10.20.30.41' },
            },
          ],
        },
        {
          label: 'first turn: what the caller said, buttons read out',
          path: `${base}/activities`,
          body: said('3f6a2b1c-5d4e-4f3a-9b8c-7d6e5f4a3b02', 'sad'),
          headers: auth(),
          answers: [{ text: 'Here is something to cheer you up.' }, { text: 'Did that help you', buttons: [{ title: 'yes', payload: '/affirm' }, { title: 'no', payload: '/deny' }] }],
          status: 200,
          response: activities({ type: 'message', text: 'Here is something to cheer you up.' }, { type: 'message', text: 'Did that help you. yes, no' }),
          received: [{ text: 'sad', senderId: CONVERSATION, metadata: { confidence: 0.93, recognitionOutput: { RecognitionStatus: 'Success' } } }],
        },
        {
          label: 'second turn: a question ending in "?" keeps it; an image cannot be spoken and is skipped',
          path: `${base}/activities`,
          body: said('5b2c3d4e-6f7a-4b8c-9d0e-1f2a3b4c5d03', 'no'),
          headers: auth(),
          answers: [{ image: 'https://i.imgur.com/nGF1K8f.jpg' }, { text: 'Should I transfer you to a person?', buttons: [{ title: 'yes please', payload: '/affirm' }, { title: 'no thanks', payload: '/deny' }] }],
          status: 200,
          response: activities({ type: 'message', text: 'Should I transfer you to a person? yes please, no thanks' }),
          received: [{ text: 'no' }],
        },
        {
          label: 'no input: VoiceAI Connect sends noUserInput, the bot reprompts',
          path: `${base}/activities`,
          body: noInput,
          headers: auth(),
          answers: [{ text: 'Sorry, I did not hear you. Should I transfer you to a person?' }],
          status: 200,
          response: activities({ type: 'message', text: 'Sorry, I did not hear you. Should I transfer you to a person?' }),
          received: [{ text: '/vaig_event_noUserInput', metadata: { value: 1 } }],
        },
        {
          label: 'VoiceAI Connect refreshes the conversation',
          path: `${base}/keepalive`,
          body: { conversation: CONVERSATION },
          headers: auth(),
          status: 200,
          response: {},
          received: [],
        },
        {
          label: 'the bot says goodbye and hangs up ({"custom": {"hangup": true}})',
          path: `${base}/activities`,
          body: said('9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c04', 'no thanks', 0.88),
          headers: auth(),
          answers: [{ text: 'Bye!' }, { custom: { hangup: true } }],
          status: 200,
          response: activities({ type: 'message', text: 'Bye!' }, { type: 'event', name: 'hangup' }),
          received: [{ text: 'no thanks', metadata: { confidence: 0.88 } }],
        },
        {
          label: 'VoiceAI Connect ends the conversation: the bot gets /session_end with the reason',
          path: `${base}/disconnect`,
          body: disconnect,
          headers: auth(),
          status: 200,
          response: {},
          received: [{ text: '/session_end', senderId: CONVERSATION, metadata: { reason: 'Client Side', reasonCode: 'client-disconnected' } }],
        },
        {
          label: 'the conversation is gone after the disconnect',
          path: `${base}/activities`,
          body: said('0a0a0a0a-0a0a-4a0a-8a0a-0a0a0a0a0a05', 'hello?'),
          headers: auth(),
          status: 404,
          received: [],
        },
      ],
    },
    {
      label: 'a transfer: the bot\'s custom activity goes out as written, with an id and timestamp',
      steps: [
        opened,
        {
          label: 'the caller asks for a person',
          path: `${base}/activities`,
          body: said('1b1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b01', 'a person please'),
          headers: auth(),
          answers: [{ text: 'Transferring you now.' }, { custom: { type: 'event', name: 'transfer', activityParams: { transferTarget: 'tel:+14077511320' } } }],
          status: 200,
          response: activities({ type: 'message', text: 'Transferring you now.' }, { type: 'event', name: 'transfer', activityParams: { transferTarget: 'tel:+14077511320' } }),
          received: [{ text: 'a person please' }],
        },
      ],
    },
    {
      label: 'a repeated activity (VoiceAI Connect retrying) is answered without reaching the bot again',
      steps: [
        opened,
        { label: 'first delivery', path: `${base}/activities`, body: said('2c2c2c2c-2c2c-4c2c-8c2c-2c2c2c2c2c01', 'hello'), headers: auth(), answers: [{ text: 'Hello!' }], status: 200, response: activities({ type: 'message', text: 'Hello!' }), received: [{ text: 'hello' }] },
        { label: 'the same activity again', path: `${base}/activities`, body: said('2c2c2c2c-2c2c-4c2c-8c2c-2c2c2c2c2c01', 'hello'), headers: auth(), answers: [{ text: 'Hello!' }], status: 200, response: activities(), received: [] },
      ],
    },
    {
      label: 'DTMF digits reach the bot as /vaig_event_DTMF with their value',
      steps: [
        opened,
        {
          label: 'the caller presses 1',
          path: `${base}/activities`,
          body: { conversation: CONVERSATION, activities: [{ id: '3d3d3d3d-3d3d-4d3d-8d3d-3d3d3d3d3d01', timestamp: at(9), language: 'en-US', type: 'event', name: 'DTMF', value: '1' }] },
          headers: auth(),
          answers: [{ text: 'You pressed one.' }],
          status: 200,
          response: activities({ type: 'message', text: 'You pressed one.' }),
          received: [{ text: '/vaig_event_DTMF', metadata: { value: '1' } }],
        },
      ],
    },
    {
      label: 'a slow bot is answered with the apology within response_timeout; what it says later is dropped',
      botApology: APOLOGY,
      credentials: { response_timeout: 0.3 },
      steps: [
        opened,
        {
          label: 'the bot takes longer than response_timeout (0.3 s here; the host would wait 30 s)',
          path: `${base}/activities`,
          body: said('4e4e4e4e-4e4e-4e4e-8e4e-4e4e4e4e4e01', 'what is the weather'),
          headers: auth(),
          answers: async () => {
            await new Promise((resolve) => setTimeout(resolve, 1_000));
            return [{ text: 'Sunny.' }];
          },
          status: 200,
          response: activities({ type: 'message', text: 'Sorry, I need a moment. Please say that again.' }),
          received: [{ text: 'what is the weather' }],
        },
      ],
    },
    {
      label: 'a bot that fails is answered with the apology',
      botApology: APOLOGY,
      steps: [
        opened,
        {
          label: 'the bot throws',
          path: `${base}/activities`,
          body: said('5f5f5f5f-5f5f-4f5f-8f5f-5f5f5f5f5f01', 'hello'),
          headers: auth(),
          answers: () => {
            throw new Error('bot down');
          },
          status: 200,
          response: activities({ type: 'message', text: 'Sorry, I need a moment. Please say that again.' }),
          received: [{ text: 'hello' }],
        },
      ],
    },
    {
      label: 'verification fails closed on every route: no token, a wrong token, another scheme',
      steps: [
        { label: 'create without a token', body: create, status: 401, received: [] },
        { label: 'create with a wrong token', body: create, headers: { authorization: `Bearer ${TOKEN}x` }, status: 401, received: [] },
        { label: 'create with Basic auth', body: create, headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }, status: 401, received: [] },
        { label: 'the connectivity check without a token', method: 'GET', status: 401 },
        opened,
        { label: 'activities without a token', path: `${base}/activities`, body: said('6a6a6a6a-6a6a-4a6a-8a6a-6a6a6a6a6a01', 'hello'), status: 401, received: [] },
        { label: 'activities with a wrong token', path: `${base}/activities`, body: said('6a6a6a6a-6a6a-4a6a-8a6a-6a6a6a6a6a01', 'hello'), headers: { authorization: 'Bearer nope' }, status: 401, received: [] },
        { label: 'keepalive without a token', path: `${base}/keepalive`, body: { conversation: CONVERSATION }, status: 401 },
        { label: 'disconnect without a token', path: `${base}/disconnect`, body: disconnect, status: 401, received: [] },
        { label: 'the conversation is still open', path: `${base}/keepalive`, body: { conversation: CONVERSATION }, headers: auth(), status: 200, response: {} },
      ],
    },
  ],
});

const cases: ChannelCase[] = [
  { label: 'the connectivity check (GET /webhook) answers the Bot API\'s type', method: 'GET', headers: auth(), status: 200, response: { type: 'ac-bot-api', success: true } },
  { label: 'a create without "conversation" is a 400', body: { id: 'x' }, headers: auth(), status: 400, received: [] },
  { label: 'malformed JSON is a 400', body: '{"conversation": ', headers: { ...auth(), 'content-type': 'application/json' }, status: 400 },
  { label: 'activities of an unknown conversation are a 404', path: '/conversation/nope/activities', body: { conversation: 'nope', activities: [] }, headers: auth(), status: 404, received: [] },
  { label: 'keepalive of an unknown conversation is a 404', path: '/conversation/nope/keepalive', body: { conversation: 'nope' }, headers: auth(), status: 404 },
  { label: 'a conversation id is URL-encoded in the URLs handed back', body: { conversation: 'a b/c' }, headers: auth(), status: 200, response: { activitiesURL: 'conversation/a%20b%2Fc/activities', disconnectURL: 'conversation/a%20b%2Fc/disconnect', refreshURL: 'conversation/a%20b%2Fc/keepalive', expiresSeconds: 120 } },
];

runChannelCases(test, { channel: AudiocodesInput, credentials, cases });

test.serial('activities of a conversation opened before, with a malformed list, are a 400; unknown activity types are skipped', async (t) => {
  const channel = AudiocodesInput.fromCredentials(credentials);
  channel.openConversation(CONVERSATION);
  const bot = new ScriptedBot([{ text: 'ok' }]);
  const { request } = await startServer(t, [channel], { bot });
  const post = (body: unknown) => request(`/webhooks/audiocodes${base}/activities`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  t.is((await post({ conversation: CONVERSATION })).status, 400);
  const skipped = await post({ conversation: CONVERSATION, activities: [{ id: 'a', type: 'typing' }, { id: 'b', type: 'event' }, { id: 'c', type: 'message' }, 7] });
  t.is(skipped.status, 200);
  t.deepEqual(skipped.json, { conversation: CONVERSATION, activities: [] });
  t.is(bot.received.length, 0);
});

test.serial('two activities in one request reach the bot in order and their answers come back together', async (t) => {
  const channel = AudiocodesInput.fromCredentials(credentials);
  channel.openConversation(CONVERSATION);
  const bot = new ScriptedBot((message: UserMessage) => [{ text: `you said ${message.text}` }]);
  const { request } = await startServer(t, [channel], { bot });
  const body = { conversation: CONVERSATION, activities: [...said('a1', 'one').activities, ...said('a2', 'two').activities] };
  const response = await request(`/webhooks/audiocodes${base}/activities`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  t.is(response.status, 200);
  t.deepEqual(((response.json as { activities: Array<{ text: string }> }).activities).map((a) => a.text), ['you said one', 'you said two']);
  t.deepEqual(bot.received.map((m) => m.text), ['one', 'two']);
});

test('credentials: the token is required unless allow_unverified; the key is named', (t) => {
  t.throws(() => AudiocodesInput.fromCredentials({}), { message: /token/ });
  t.notThrows(() => AudiocodesInput.fromCredentials({ allow_unverified: true }));
  t.throws(() => AudiocodesInput.fromCredentials({ token: 't', keep_alive_expiration_factor: 0.5 }), { message: /keep_alive_expiration_factor/ });
  t.throws(() => AudiocodesInput.fromCredentials({ token: 't', keep_alive: -1 }), { message: /keep_alive/ });
  const channel = AudiocodesInput.fromCredentials({ token: 't', use_websocket: false, keep_alive: 60 });
  t.is(channel.credentials.keep_alive, 60);
  t.is(channel.credentials.response_timeout, 8);
});

test('verifyToken: constant-time Bearer check, never throws', (t) => {
  t.true(verifyToken({ authorization: `Bearer ${TOKEN}` }, TOKEN));
  t.true(verifyToken({ authorization: `bearer ${TOKEN}` }, TOKEN));
  t.is(verifyToken({}, TOKEN), 'missing Authorization header');
  t.is(verifyToken({ authorization: TOKEN }, TOKEN), 'Authorization is not a Bearer token');
  t.is(verifyToken({ authorization: `Bearer ${TOKEN.slice(0, -1)}` }, TOKEN), 'Bearer token does not match');
  t.is(verifyToken({ authorization: `Bearer ${TOKEN}` }, undefined), 'no token configured');
});

test('buttons are read out as Rasa reads them; an empty text says only the titles', (t) => {
  const buttons = [{ title: 'yes', payload: '/affirm' }, { title: 'no', payload: '/deny' }];
  t.is(readOutButtons('Continue', buttons), 'Continue. yes, no');
  t.is(readOutButtons('Continue?', buttons), 'Continue? yes, no');
  t.is(readOutButtons('Choose:', buttons), 'Choose: yes, no');
  t.is(readOutButtons('', buttons), 'yes, no');
  t.is(readOutButtons('Continue', []), 'Continue');
});

test('emojis are not sent to text-to-speech', (t) => {
  t.is(spokenText('Great 👍🏽 job 🇫🇷!'), 'Great job !');
  t.is(spokenText('Family: 👨‍👩‍👧'), 'Family:');
  t.is(spokenText('plain'), 'plain');
});

test('parseActivity: Rasa\'s mapping of messages and events', (t) => {
  t.deepEqual(parseActivity({ id: 'x', type: 'event', name: 'DTMF' }), { id: 'x', text: '/vaig_event_DTMF', metadata: {} });
  t.deepEqual(parseActivity({ type: 'event', name: 'transferStatus', parameters: { status: 'failed' } }), { id: undefined, text: '/vaig_event_transferStatus', metadata: { status: 'failed' } });
  t.is(parseActivity({ type: 'message', text: '  ' }), 'a message activity without text');
  t.is(parseActivity(null), 'an activity is not an object');
});

test('the output: images and attachments skipped, custom non-objects skipped, answers after close dropped', async (t) => {
  const output = new AudiocodesOutput(undefined, () => new Date('2026-12-02T11:00:00.000Z'));
  await output.sendResponse('c', { image: 'https://example.com/a.png' });
  await output.sendResponse('c', { attachment: { type: 'file' } });
  await output.sendResponse('c', { custom: [1, 2] } as unknown as BotMessage);
  await output.sendResponse('c', { text: 'hi' });
  const sent = output.close();
  await output.sendResponse('c', { text: 'late' });
  t.is(sent.length, 1);
  t.like(sent[0], { type: 'message', text: 'hi', timestamp: '2026-12-02T11:00:00.000Z' });
});

test.serial('the apology is answered at response_timeout, not when the bot finishes; the late answer is logged and dropped', async (t) => {
  const channel = AudiocodesInput.fromCredentials({ ...credentials, response_timeout: 0.25 });
  channel.openConversation(CONVERSATION);
  let finished = false;
  const bot = new ScriptedBot(async () => {
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    finished = true;
    return [{ text: 'Sunny.' }];
  });
  const { request, logs } = await startServer(t, [channel], { bot, botApology: APOLOGY });
  const began = Date.now();
  const response = await request(`/webhooks/audiocodes${base}/activities`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify(said('7b7b7b7b-7b7b-4b7b-8b7b-7b7b7b7b7b01', 'weather')) });
  const took = Date.now() - began;
  t.is(response.status, 200);
  t.true(took >= 200 && took < 1_000, `answered after ${took} ms`);
  t.false(finished);
  t.deepEqual((response.json as { activities: Array<{ text: string }> }).activities.map((a) => a.text), [APOLOGY[0]!.text]);
  await bot.waitFor(1);
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  t.true(finished);
  t.regex(logs.text, /an answer came after the response was sent; dropped/);
});

test.serial('random activities bodies on an open conversation never produce a 500', async (t) => {
  const { default: fc } = await import('fast-check');
  const channel = AudiocodesInput.fromCredentials(credentials);
  channel.openConversation(CONVERSATION);
  const { request } = await startServer(t, [channel], { bot: new ScriptedBot([{ text: 'ok', buttons: [{ title: 'b', payload: '/b' }] }, { custom: { hangup: true } }]) });
  const activity = fc.record(
    { id: fc.oneof(fc.uuid(), fc.integer(), fc.constant(null)), type: fc.constantFrom('message', 'event', 'typing', 7), text: fc.oneof(fc.string(), fc.jsonValue()), name: fc.oneof(fc.constantFrom('start', 'DTMF', 'noUserInput', ''), fc.jsonValue()), value: fc.jsonValue(), parameters: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue()) },
    { requiredKeys: [] },
  );
  const body = fc.oneof(fc.record({ conversation: fc.constant(CONVERSATION), activities: fc.oneof(fc.array(activity, { maxLength: 3 }), fc.jsonValue()) }), fc.jsonValue());
  await fc.assert(
    fc.asyncProperty(body, async (value) => {
      const response = await request(`/webhooks/audiocodes${base}/activities`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify(value) });
      if (response.status >= 500) throw new Error(`${response.status} to ${JSON.stringify(value).slice(0, 200)}: ${response.text}`);
    }),
    { seed: 20261202, numRuns: 300 },
  );
  t.pass();
});

test.serial('a conversation id with reserved characters works through the URLs handed back', async (t) => {
  const channel = AudiocodesInput.fromCredentials(credentials);
  const bot = new ScriptedBot([{ text: 'ok' }]);
  const { request } = await startServer(t, [channel], { bot });
  const headers = { ...auth(), 'content-type': 'application/json' };
  const created = await request('/webhooks/audiocodes/webhook', { method: 'POST', headers, body: JSON.stringify({ conversation: 'a b/c?d' }) });
  const url = (created.json as { activitiesURL: string }).activitiesURL;
  const response = await request(`/webhooks/audiocodes/${url}`, { method: 'POST', headers, body: JSON.stringify({ conversation: 'a b/c?d', activities: [{ id: '1', type: 'message', text: 'hi' }] }) });
  t.is(response.status, 200);
  t.is(bot.received[0]?.senderId, 'a b/c?d');
});
