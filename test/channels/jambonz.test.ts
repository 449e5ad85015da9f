// jambonz over its WebSocket API: a whole call (session:new → initial prompt → turns with buttons read out → no-input
// reprompt → hang-up → call:status completed), verification on the upgrade, and a slow bot answered within jambonz's
// 5 s. Message shapes from jambonz's WebSocket API reference (session:new, verb:hook, call:status, ack).
import test from 'ava';
import { CredentialsError, type BotMessage, type UserMessage } from 'switchboard';
import SocketIOInput from '../../channels/socketio/index.js';
import JambonzInput, { DEFAULT_RESPONSE_TIMEOUT_MS, parseMessage, verifyBasicAuth } from '../../channels/jambonz/index.js';
import { readOutButtons, spokenText } from 'switchboard';
import { WebSocket } from 'ws';
import { startTestHost } from 'switchboard/testing';
import { makeProject, runCli } from '../fixtures.js';
import { runSocketCases, type SocketCase } from '../harness.js';

const USERNAME = 'switchboard';
const PASSWORD = 'jambonz-app-password';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const AUTH = { authorization: basic(USERNAME, PASSWORD) };
const CALL_SID = '9fb35c28-9688-4531-943c-e280b04f3adf';

/** `session:new` as jambonz sends it for an inbound call (docs: WebSocket API, session:new). */
function sessionNew(msgid = 'auuHioXGktYh2ZFYxf3hAA'): object {
  return {
    type: 'session:new',
    msgid,
    call_sid: CALL_SID,
    data: {
      sip: {
        headers: {
          via: 'SIP/2.0/UDP 3.212.205.202;rport=5060;branch=z9hG4bK3tv053jp1mcHQ;received=10.0.13.72',
          'max-forwards': '70',
          from: '<sip:+15083084809@3.212.205.202:5060>;tag=9mgyBeaUy4H2S',
          to: '<sip:+15083728299@3.212.205.202>',
          'call-id': 'd8907723-0bc7-123b-09b5-12e962f3039b',
          cseq: '48063641 INVITE',
          'user-agent': 'Twilio Gateway',
          'X-Originating-Carrier': 'Twilio',
        },
      },
      call_sid: CALL_SID,
      call_id: 'd8907723-0bc7-123b-09b5-12e962f3039b',
      application_sid: '7087fe50-8acb-4f3b-b820-97b573723aab',
      account_sid: '9351f46a-678c-43f5-b8a6-d4eb58d131af',
      direction: 'inbound',
      from: '+15083084809',
      to: '+15083728299',
      caller_name: 'Jane Doe',
      sip_status: 100,
      sip_reason: 'Trying',
      call_status: 'trying',
    },
  };
}

/** `verb:hook` for the gather's actionHook with a final transcript (docs: WebSocket API, verb:hook). */
function speech(msgid: string, transcript: string, extra: Record<string, unknown> = {}): object {
  return {
    type: 'verb:hook',
    msgid,
    call_sid: CALL_SID,
    hook: '/gather',
    data: {
      speech: { language_code: 'en-US', is_final: true, alternatives: [{ confidence: 0.91916794, transcript }], ...extra },
      reason: 'speechDetected',
      call_sid: CALL_SID,
      direction: 'inbound',
      from: '+15083084809',
      to: '+15083728299',
      call_status: 'in-progress',
    },
  };
}

function gatherEnded(msgid: string, reason: string, data: Record<string, unknown> = {}): object {
  return { type: 'verb:hook', msgid, call_sid: CALL_SID, hook: '/gather', data: { reason, call_sid: CALL_SID, call_status: 'in-progress', ...data } };
}

const callCompleted = { type: 'call:status', msgid: 'cQ8pTw1vj3xkw2N5Lw7i3D', call_sid: CALL_SID, data: { call_sid: CALL_SID, direction: 'inbound', from: '+15083084809', to: '+15083728299', call_status: 'completed', sip_status: 200, sip_reason: 'OK', duration: 36 } };

const GATHER = { verb: 'gather', input: ['speech', 'digits'], minDigits: 1, actionHook: '/gather' };
const say = (text: string) => ({ verb: 'say', text });
const ack = (msgid: string, data?: unknown[]) => (data === undefined ? { type: 'ack', msgid } : { type: 'ack', msgid, data });

/** A moodbot-like bot for a whole call. */
function moodbot(message: UserMessage): BotMessage[] {
  switch (message.text) {
    case '/session_start':
      return [{ text: 'Hey! How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }] }];
    case 'I feel great':
      return [{ text: 'Great, carry on', buttons: [{ title: 'yes', payload: '/affirm' }, { title: 'no', payload: '/deny' }] }, { image: 'https://i.imgur.com/nGF1K8f.jpg' }];
    case 'no':
      return [{ text: 'Bye 👋' }, { custom: { hangup: true } }];
    default:
      return [];
  }
}

const callMetadata = {
  call_id: CALL_SID,
  user_phone: '+15083084809',
  bot_phone: '+15083728299',
  user_name: 'Jane Doe',
  user_host: '3.212.205.202',
  bot_host: '3.212.205.202',
  direction: 'inbound',
  stream_id: null,
};

const cases: SocketCase[] = [
  {
    label: 'a whole call: start → initial prompt → two turns with buttons read out → no-input reprompt → hang-up → call ended',
    answers: moodbot,
    steps: [
      { send: sessionNew(), expect: [ack('auuHioXGktYh2ZFYxf3hAA', [say('Hey! How are you? great, sad'), GATHER])] },
      // The image cannot be heard: skipped.
      { send: speech('cvY6kNE8RXdaZdaDcJbViG', 'I feel great'), expect: [ack('cvY6kNE8RXdaZdaDcJbViG', [say('Great, carry on. yes, no'), GATHER])] },
      { send: gatherEnded('d2Ae3nQ5uRkUJ1cEkt8Sgr', 'timeout'), expect: [ack('d2Ae3nQ5uRkUJ1cEkt8Sgr', [say("I'm sorry, I didn't catch that."), GATHER])] },
      { send: speech('fGx9k2BxF6fT4n1c7kzv1s', 'no'), expect: [ack('fGx9k2BxF6fT4n1c7kzv1s', [say('Bye'), { verb: 'pause', length: 1 }, { verb: 'hangup' }])] },
      // No ack: jambonz does not wait on call status notifications.
      { send: callCompleted, expect: [] },
    ],
    received: [
      { text: '/session_start', senderId: CALL_SID, messageId: 'auuHioXGktYh2ZFYxf3hAA', inputChannel: 'jambonz', metadata: callMetadata },
      { text: 'I feel great', senderId: CALL_SID, messageId: 'cvY6kNE8RXdaZdaDcJbViG', metadata: {} },
      { text: 'no', senderId: CALL_SID },
      { text: '/session_end', senderId: CALL_SID, metadata: {} },
    ],
  },
  {
    label: 'keypad digits are the caller\'s answer (dtmfDetected)',
    answers: [{ text: 'You pressed a key' }],
    steps: [{ send: gatherEnded('kz1', 'dtmfDetected', { digits: '42' }), expect: [ack('kz1', [say('You pressed a key'), GATHER])] }],
    received: [{ text: '42', senderId: CALL_SID }],
  },
  {
    label: 'a transcript nested in speech.transcripts is read too',
    answers: [{ text: 'ok' }],
    steps: [
      {
        send: { type: 'verb:hook', msgid: 'n1', call_sid: CALL_SID, hook: '/gather', data: { reason: 'speechDetected', speech: { is_final: true, transcripts: [{ is_final: true, language_code: 'en-US', alternatives: [{ confidence: 0.9, transcript: "I'd like to book a car" }] }] } } },
        expect: [ack('n1', [say('ok'), GATHER])],
      },
    ],
    received: [{ text: "I'd like to book a car" }],
  },
  {
    label: 'a partial or empty transcript is not sent to the bot; jambonz is told to listen again',
    steps: [
      { send: speech('p1', 'I feel', { is_final: false }), expect: [ack('p1', [GATHER])] },
      { send: speech('p2', '   '), expect: [ack('p2', [GATHER])] },
    ],
    received: [],
  },
  {
    label: 'a custom payload with text is said; without, skipped; several paragraphs are said one by one',
    answers: [{ text: 'first\n\nsecond' }, { custom: { text: 'from a custom payload' } }, { custom: { blocks: [] } }, { attachment: { type: 'file', payload: { url: 'https://example.com/a.pdf' } } }],
    steps: [{ send: speech('c1', 'hello'), expect: [ack('c1', [say('first'), say('second'), say('from a custom payload'), GATHER])] }],
  },
  {
    label: 'session:reconnect is acked with a gather (jambonz waits for it); verb:status and unknown types are not',
    steps: [
      { send: { type: 'session:reconnect', msgid: 'r1', call_sid: CALL_SID, data: { call_sid: CALL_SID } }, expect: [ack('r1', [GATHER])] },
      { send: { type: 'verb:status', msgid: 's1', call_sid: CALL_SID, data: { event: 'starting', id: 'x', name: 'say' } }, expect: [] },
      { send: { type: 'jambonz:error', msgid: 'e1', call_sid: CALL_SID, data: { error: 'boom' } }, expect: [] },
      { send: 'not json', expect: [] },
      { send: [1, 2], expect: [] },
    ],
    received: [],
  },
  {
    label: 'a bot slower than jambonz waits is answered with the apology in time, and the caller is listened to again',
    credentials: { response_timeout_ms: 500 },
    apology: [{ text: 'Sorry, I am having trouble answering right now.' }],
    answers: async () => {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      return [{ text: 'too late' }];
    },
    steps: [{ send: sessionNew('slow1'), within: 1_000, expect: [ack('slow1', [say('Sorry, I am having trouble answering right now.'), GATHER])] }],
    received: [{ text: '/session_start' }],
  },
  {
    label: "with the default response_timeout_ms, a bot slower than jambonz's 5 s is answered with the apology before jambonz gives up",
    apology: [{ text: 'Sorry, I am having trouble answering right now.' }],
    answers: async () => {
      await new Promise((resolve) => setTimeout(resolve, 5_500));
      return [{ text: 'too late' }];
    },
    steps: [{ send: speech('slow2', 'hello'), within: 5_000, expect: [ack('slow2', [say('Sorry, I am having trouble answering right now.'), GATHER])] }],
  },
  {
    label: 'a bot that fails is answered with the apology',
    apology: [{ text: 'Sorry, something went wrong.' }],
    answers: () => {
      throw new Error('the bot broke');
    },
    steps: [{ send: speech('f1', 'hello'), expect: [ack('f1', [say('Sorry, something went wrong.'), GATHER])] }],
  },
  {
    label: 'the URL may end with a slash and carry a query',
    path: '/websocket/?app=moodbot',
    steps: [{ send: sessionNew('q1'), expect: [ack('q1', [say('ok'), GATHER])] }],
  },
  // Verification fails closed.
  { label: 'an upgrade without credentials is refused with 401', headers: {}, refused: 401, received: [] },
  { label: 'an upgrade with a wrong password is refused with 401', headers: { authorization: basic(USERNAME, 'wrong-password') }, refused: 401 },
  { label: 'an upgrade with a wrong username is refused with 401', headers: { authorization: basic('someone', PASSWORD) }, refused: 401 },
  { label: 'an upgrade with a Bearer token is refused with 401', headers: { authorization: `Bearer ${PASSWORD}` }, refused: 401 },
  { label: 'an upgrade without the ws.jambonz.org subprotocol is refused with 400', protocols: ['chat'], refused: 400 },
  {
    label: 'with allow_unverified and no password, a connection without credentials is accepted',
    credentials: { username: undefined, password: undefined, allow_unverified: true },
    headers: {},
    steps: [{ send: sessionNew('u1'), expect: [ack('u1', [say('ok'), GATHER])] }],
  },
];

runSocketCases(test, { channel: JambonzInput, credentials: { username: USERNAME, password: PASSWORD }, headers: AUTH, protocols: ['ws.jambonz.org'], cases });

test('the channel refuses to start without a password, or with a password and no username', (t) => {
  t.throws(() => JambonzInput.fromCredentials({}), { instanceOf: CredentialsError, message: /"password"/ });
  t.throws(() => JambonzInput.fromCredentials({ username: USERNAME }), { instanceOf: CredentialsError, message: /"password"/ });
  t.throws(() => JambonzInput.fromCredentials({ password: PASSWORD }), { instanceOf: CredentialsError, message: /"username"/ });
  t.true(JambonzInput.fromCredentials({ allow_unverified: true }).unverified);
});

test("the default answer time is inside jambonz's 5 s", (t) => {
  t.true(DEFAULT_RESPONSE_TIMEOUT_MS < 5_000);
  t.is(JambonzInput.fromCredentials({ username: USERNAME, password: PASSWORD }).credentials.response_timeout_ms, DEFAULT_RESPONSE_TIMEOUT_MS);
});

test('verifyBasicAuth never throws and compares both parts', (t) => {
  t.is(verifyBasicAuth(AUTH, USERNAME, PASSWORD), true);
  t.is(verifyBasicAuth({ authorization: 'basic ' + Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64') }, USERNAME, PASSWORD), true);
  t.not(verifyBasicAuth({}, USERNAME, PASSWORD), true);
  t.not(verifyBasicAuth({ authorization: 'Basic !!!' }, USERNAME, PASSWORD), true);
  t.not(verifyBasicAuth({ authorization: `Basic ${Buffer.from('no-colon').toString('base64')}` }, USERNAME, PASSWORD), true);
  t.not(verifyBasicAuth(AUTH, undefined, undefined), true);
  // A password containing a colon: only the first colon separates.
  t.is(verifyBasicAuth({ authorization: basic('u', 'a:b') }, 'u', 'a:b'), true);
});

test('buttons are read out in one sentence, as Rasa reads them; emoji are not spoken', (t) => {
  const buttons = [{ title: 'great', payload: '/great' }, { title: 'sad', payload: '/sad' }];
  t.is(readOutButtons('Pick one', buttons), 'Pick one. great, sad');
  t.is(readOutButtons('Pick one:', buttons), 'Pick one: great, sad');
  // Rasa fails on an empty text; the titles alone are said.
  t.is(readOutButtons('', buttons), 'great, sad');
  t.is(spokenText('Bye 👋 see you 👍🏽!'), 'Bye see you !');
  t.is(spokenText('🇫🇷'), '');
});

test('parseMessage reads every message without throwing', (t) => {
  t.like(parseMessage(JSON.stringify(sessionNew())), { kind: 'call', msgid: 'auuHioXGktYh2ZFYxf3hAA', call_sid: CALL_SID, call: callMetadata });
  t.like(parseMessage(JSON.stringify(callCompleted)), { kind: 'ended', call_sid: CALL_SID });
  t.like(parseMessage(JSON.stringify({ ...callCompleted, data: { call_status: 'in-progress' } })), { kind: 'ignore' });
  t.like(parseMessage(JSON.stringify(gatherEnded('t1', 'timeout'))), { kind: 'no-input', reason: 'timeout' });
  t.like(parseMessage(JSON.stringify({ ...gatherEnded('o1', 'speechDetected'), hook: '/other' })), { kind: 'ignore' });
  t.like(parseMessage(JSON.stringify({ type: 'session:new', data: {} })), { kind: 'ignore' });
  for (const frame of ['', 'null', '[]', '"x"', '{"type":"verb:hook","msgid":1}', '{"type":"session:new","msgid":"m","call_sid":"c","data":[]}']) {
    t.notThrows(() => parseMessage(frame));
  }
});

test('startup with a password and no username, or neither, exits 2 naming the key', async (t) => {
  const project = makeProject();
  t.teardown(() => project.remove());
  project.write('half.yml', `jambonz:\n  password: ${PASSWORD}\n`);
  project.write('none.yml', 'jambonz:\n');
  const half = await runCli(['--credentials', 'half.yml', '--port', '0'], { cwd: project.dir });
  t.is(half.code, 2);
  t.regex(half.stderr, /jambonz: missing "username"/);
  t.false(half.stderr.includes(PASSWORD), 'the secret is not printed');
  const none = await runCli(['--credentials', 'none.yml', '--port', '0'], { cwd: project.dir });
  t.is(none.code, 2);
  t.regex(none.stderr, /jambonz: missing "password"/);
});

test('on shutdown an open call is closed with 1001 (going away: jambonz reconnects), not left hanging', async (t) => {
  const channel = JambonzInput.fromCredentials({ username: USERNAME, password: PASSWORD });
  const host = await startTestHost(channel);
  let closed = false;
  t.teardown(() => (closed ? undefined : host.close()));
  const ws = new WebSocket(`${host.url.replace(/^http/, 'ws')}/webhooks/jambonz/websocket`, ['ws.jambonz.org'], { headers: AUTH });
  t.teardown(() => ws.terminate());
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  t.is(ws.protocol, 'ws.jambonz.org');
  const code = new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
  const started = Date.now();
  await host.close();
  closed = true;
  t.is(await code, 1001);
  t.true(Date.now() - started < 3_000);
});

test('beside socketio on the same HTTP server, each takes only its own upgrades', async (t) => {
  const jambonz = JambonzInput.fromCredentials({ username: USERNAME, password: PASSWORD });
  const socketio = SocketIOInput.fromCredentials({ session_secret: 'a-session-secret-of-some-length' });
  const host = await startTestHost([socketio, jambonz], { answers: [{ text: 'ok' }] });
  t.teardown(() => host.close());
  const ws = new WebSocket(`${host.url.replace(/^http/, 'ws')}/webhooks/jambonz/websocket`, ['ws.jambonz.org'], { headers: AUTH });
  t.teardown(() => ws.terminate());
  const frames: unknown[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(String(data))));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  // Past engine.io's destroyUpgradeTimeout (1 s): socket.io must not cut a connection that is not its own.
  await new Promise((resolve) => setTimeout(resolve, 1_300));
  ws.send(JSON.stringify(sessionNew('both1')));
  const deadline = Date.now() + 3_000;
  while (frames.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.deepEqual(frames, [ack('both1', [say('ok'), GATHER])]);
  const engine = await fetch(`${host.url}/socket.io/?EIO=4&transport=polling`);
  t.is(engine.status, 200);
});
