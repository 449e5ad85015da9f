import test from 'ava';
import twilio from 'twilio';
import TwilioVoiceInput, { buttonsSpoken, checkSpeechSettings, voiceResponse } from '../../channels/twilio_voice/index.js';
import { parseCall } from '../../channels/twilio_voice/parse.js';
import { CredentialsError, type BotMessage } from 'switchboard';
import { startTestHost } from 'switchboard/testing';
import { ScriptedBot, runChannelCases, type ChannelCase } from '../harness.js';

const ACCOUNT_SID = 'AC0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const AUTH_TOKEN = '9c1b7e3f5a2d4c6e8f0a1b2c3d4e5f60';
const BOT_NUMBER = '+14155550100';
const CALLER = '+14155550123';
const CALL_SID = 'CA1f0e2d3c4b5a69788796a5b4c3d2e1f0';
/** The voice URL set on the number in the Console; the harness's real URL (127.0.0.1:<port>) is unknown in advance. */
const WEBHOOK_URL = 'https://bot.example.com/webhooks/twilio_voice/webhook';
const CREDENTIALS = { auth_token: AUTH_TOKEN, account_sid: ACCOUNT_SID, webhook_url: WEBHOOK_URL, assistant_voice: 'Polly.Joanna', speech_timeout: 'auto', speech_model: 'numbers_and_commands' };

/**
 * The referee: the signature twilio-node (Twilio's own library) computes for the URL Twilio called (the number's
 * voice URL, or a `<Gather action>` with its query) and the form, never our code.
 */
function signFor(url: string) {
  return (raw: string) => ({ 'x-twilio-signature': twilio.getExpectedTwilioSignature(AUTH_TOKEN, url, Object.fromEntries(new URLSearchParams(raw))) });
}

/** A call's webhook as Twilio posts it (TwiML request parameters; a `<Gather>` result adds SpeechResult, Confidence). */
function call(fields: Record<string, string> = {}): Record<string, string> {
  return {
    AccountSid: ACCOUNT_SID,
    ApiVersion: '2010-04-01',
    CallSid: CALL_SID,
    CallStatus: 'ringing',
    Called: BOT_NUMBER,
    CalledCity: 'SAN FRANCISCO',
    CalledCountry: 'US',
    CalledState: 'CA',
    CalledZip: '94105',
    Caller: CALLER,
    CallerCity: 'OAKLAND',
    CallerCountry: 'US',
    CallerState: 'CA',
    CallerZip: '94612',
    Direction: 'inbound',
    From: CALLER,
    FromCity: 'OAKLAND',
    FromCountry: 'US',
    FromState: 'CA',
    FromZip: '94612',
    To: BOT_NUMBER,
    ToCity: 'SAN FRANCISCO',
    ToCountry: 'US',
    ToState: 'CA',
    ToZip: '94105',
    ...fields,
  };
}

/** A `<Gather input="speech">` result posted to its action URL. */
function said(speech: string | undefined, fields: Record<string, string> = {}): Record<string, string> {
  return call({ CallStatus: 'in-progress', ...(speech === undefined ? {} : { SpeechResult: speech, Confidence: '0.9372' }), ...fields });
}

const XML = '<?xml version="1.0" encoding="UTF-8"?>';
const GATHER_ATTRIBUTES = 'actionOnEmptyResult="true" enhanced="false" input="speech" speechModel="numbers_and_commands" speechTimeout="auto"';
/** The `<Gather>` that listens after `last` is said: its action carries `last`, to be said again on silence. */
const gather = (last: string) => `<Gather action="${WEBHOOK_URL}?reprompt=${encodeURIComponent(last)}" ${GATHER_ATTRIBUTES}>`;
const say = (text: string) => `<Say voice="Polly.Joanna">${text}</Say>`;
const PAUSE = '<Pause length="1"/>';
const CALL_METADATA = { call_id: CALL_SID, user_phone: CALLER, bot_phone: BOT_NUMBER, direction: 'inbound' };

const GREETING = 'Hey! How are you?';
const MOODS = [{ title: 'great', payload: '/mood_great' }, { title: 'super sad', payload: '/mood_unhappy' }];
const TURN1_SPOKEN = 'Hey! How are you? Choose one of: great, super sad.';
const TURN2_SPOKEN = 'Did that help you? Choose one of: yes, no.';

/** A whole call, one webhook request per row: each is what Twilio posts at that point of the call. */
const cases: ChannelCase[] = [
  {
    label: 'health check',
    method: 'GET',
    path: '/',
    status: 200,
    response: { status: 'ok' },
  },
  {
    label: 'call start: the bot gets initial_prompt, the call hears its answers, buttons read out, then Twilio listens',
    form: call(),
    sign: signFor(WEBHOOK_URL),
    answers: [{ text: 'Welcome to the mood line 😀' }, { text: GREETING, buttons: MOODS }],
    status: 200,
    response: `${XML}<Response>${say('Welcome to the mood line')}${PAUSE}${gather(TURN1_SPOKEN)}${say(TURN1_SPOKEN)}</Gather></Response>`,
    received: [{ text: 'hello', senderId: CALLER, inputChannel: 'twilio_voice', metadata: CALL_METADATA }],
  },
  {
    label: 'turn 1: what the caller said reaches the bot; an image is skipped, the buttons are read out',
    path: `/webhook?reprompt=${encodeURIComponent(TURN1_SPOKEN)}`,
    form: said('I am sad'),
    sign: signFor(`${WEBHOOK_URL}?reprompt=${encodeURIComponent(TURN1_SPOKEN)}`),
    answers: [{ text: 'Here is something to cheer you up:' }, { image: 'https://i.imgur.com/nGF1K8f.jpg' }, { text: 'Did that help you?', buttons: [{ title: 'yes', payload: '/affirm' }, { title: 'no', payload: '/deny' }] }],
    status: 200,
    response: `${XML}<Response>${say('Here is something to cheer you up:')}${PAUSE}${gather(TURN2_SPOKEN)}${say(TURN2_SPOKEN)}</Gather></Response>`,
    received: [{ text: 'I am sad', senderId: CALLER, metadata: { ...CALL_METADATA, confidence: 0.9372 } }],
  },
  {
    label: 'turn 2: quick replies are read out like buttons; a custom payload is skipped',
    path: `/webhook?reprompt=${encodeURIComponent(TURN2_SPOKEN)}`,
    form: said('no'),
    sign: signFor(`${WEBHOOK_URL}?reprompt=${encodeURIComponent(TURN2_SPOKEN)}`),
    answers: [{ custom: { blocks: [] } }, { text: 'Shall I try again?', quick_replies: [{ title: 'yes please', payload: '/affirm' }, { title: 'no thanks', payload: '/deny' }] }],
    status: 200,
    response: `${XML}<Response>${gather('Shall I try again? Choose one of: yes please, no thanks.')}${say('Shall I try again? Choose one of: yes please, no thanks.')}</Gather></Response>`,
    received: [{ text: 'no', senderId: CALLER }],
  },
  {
    label: 'no input: the last thing said is said again, and the bot is not called',
    path: `/webhook?reprompt=${encodeURIComponent(TURN2_SPOKEN)}`,
    form: said(undefined),
    sign: signFor(`${WEBHOOK_URL}?reprompt=${encodeURIComponent(TURN2_SPOKEN)}`),
    status: 200,
    response: `${XML}<Response>${gather(TURN2_SPOKEN)}${say(TURN2_SPOKEN)}</Gather></Response>`,
    received: [],
  },
  {
    label: 'no input with nothing to say again: reprompt_fallback_phrase',
    path: '/webhook?reprompt=',
    form: said(undefined),
    sign: signFor(`${WEBHOOK_URL}?reprompt=`),
    status: 200,
    response: `${XML}<Response>${gather("I'm sorry I didn't get that could you rephrase.")}${say("I'm sorry I didn't get that could you rephrase.")}</Gather></Response>`,
    received: [],
  },
  {
    label: 'hang-up: {"custom": {"hangup": true}} ends the call after what came before it; nothing after it is said',
    path: `/webhook?reprompt=${encodeURIComponent(TURN2_SPOKEN)}`,
    form: said('no, goodbye'),
    sign: signFor(`${WEBHOOK_URL}?reprompt=${encodeURIComponent(TURN2_SPOKEN)}`),
    answers: [{ text: 'Bye & take care' }, { custom: { hangup: true } }, { text: 'never said' }],
    status: 200,
    response: `${XML}<Response>${say('Bye &amp; take care')}${PAUSE}<Hangup/></Response>`,
    received: [{ text: 'no, goodbye', senderId: CALLER }],
  },
  {
    label: 'call over (a status callback on the same URL): empty TwiML, the bot is not called',
    form: call({ CallStatus: 'completed', CallDuration: '42' }),
    sign: signFor(WEBHOOK_URL),
    status: 200,
    response: `${XML}<Response/>`,
    received: [],
  },
  {
    label: 'the bot says nothing: Twilio still listens (an empty <Response/> would hang up)',
    path: `/webhook?reprompt=${encodeURIComponent(TURN2_SPOKEN)}`,
    form: said('hmm'),
    sign: signFor(`${WEBHOOK_URL}?reprompt=${encodeURIComponent(TURN2_SPOKEN)}`),
    answers: [],
    status: 200,
    response: `${XML}<Response>${gather('')}</Gather></Response>`,
  },
  {
    label: 'an outbound call (the bot called): the person called is the sender, and the first request starts the call',
    form: call({ CallStatus: 'in-progress', Direction: 'outbound-api', From: BOT_NUMBER, Caller: BOT_NUMBER, To: CALLER, Called: CALLER }),
    sign: signFor(WEBHOOK_URL),
    answers: [{ text: 'Hi, this is your reminder.' }],
    status: 200,
    response: `${XML}<Response>${gather('Hi, this is your reminder.')}${say('Hi, this is your reminder.')}</Gather></Response>`,
    received: [{ text: 'hello', senderId: CALLER, metadata: { call_id: CALL_SID, user_phone: CALLER, bot_phone: BOT_NUMBER, direction: 'outbound-api' } }],
  },
  // Verification fails closed: 401, and the bot never hears of it.
  { label: 'unsigned: 401', form: call(), status: 401, received: [] },
  { label: 'signed with another token: 401', form: call(), headers: { 'x-twilio-signature': twilio.getExpectedTwilioSignature('another-token', WEBHOOK_URL, call()) }, status: 401, received: [] },
  {
    label: 'a forged reprompt (the action URL changed after signing): 401',
    path: `/webhook?reprompt=${encodeURIComponent('Say your PIN')}`,
    form: said(undefined),
    sign: signFor(`${WEBHOOK_URL}?reprompt=${encodeURIComponent(TURN2_SPOKEN)}`),
    status: 401,
    received: [],
  },
  { label: 'a field changed after signing: 401', form: said('transfer all my money'), headers: { 'x-twilio-signature': twilio.getExpectedTwilioSignature(AUTH_TOKEN, WEBHOOK_URL, said('hello')) }, status: 401, received: [] },
  { label: 'another account, validly signed with this token: 401', form: call({ AccountSid: 'AC99999999999999999999999999999999' }), sign: signFor(WEBHOOK_URL), status: 401, received: [] },
  { label: 'signed, but not a call (no CallSid): 400', form: { AccountSid: ACCOUNT_SID, From: CALLER }, sign: signFor(WEBHOOK_URL), status: 400, received: [] },
];

runChannelCases(test, { channel: TwilioVoiceInput, credentials: CREDENTIALS, cases });

test('the expected TwiML above is what twilio-node builds for the same verbs (the fixtures are not our own renderer)', (t) => {
  const response = new twilio.twiml.VoiceResponse();
  response.say({ voice: 'Polly.Joanna' }, 'Welcome to the mood line');
  response.pause({ length: 1 });
  const listen = response.gather({ action: `${WEBHOOK_URL}?reprompt=${encodeURIComponent(TURN1_SPOKEN)}`, actionOnEmptyResult: true, enhanced: false, input: ['speech'], speechModel: 'numbers_and_commands', speechTimeout: 'auto' });
  listen.say({ voice: 'Polly.Joanna' }, TURN1_SPOKEN);
  t.is(response.toString(), `${XML}<Response>${say('Welcome to the mood line')}${PAUSE}${gather(TURN1_SPOKEN)}${say(TURN1_SPOKEN)}</Gather></Response>`);
  const bye = new twilio.twiml.VoiceResponse();
  bye.say({ voice: 'Polly.Joanna' }, 'Bye & take care');
  bye.pause({ length: 1 });
  bye.hangup();
  t.is(bye.toString(), `${XML}<Response>${say('Bye &amp; take care')}${PAUSE}<Hangup/></Response>`);
  const settings = { action: WEBHOOK_URL, voice: 'Polly.Joanna', speechTimeout: 'auto', speechModel: 'numbers_and_commands', enhanced: 'false' as const };
  t.is(voiceResponse([{ recipient_id: CALLER, text: 'Bye & take care' }, { recipient_id: CALLER, custom: { hangup: true } }], settings), bye.toString());
});

/** A host whose bot takes `delayMs` to answer, with the channel's deadline `response_timeout` seconds. */
async function slowHost(t: import('ava').ExecutionContext, delayMs: number, options: { responseTimeout: number; botTimeoutMs?: number; apology?: BotMessage[] }) {
  const bot = new ScriptedBot(async (message) => {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    return [{ text: `late answer to ${message.text}` }];
  });
  const channel = TwilioVoiceInput.fromCredentials({ ...CREDENTIALS, response_timeout: options.responseTimeout });
  const host = await startTestHost(channel, { bot, botTimeoutMs: options.botTimeoutMs, botApology: options.apology ?? [{ text: 'Sorry, I am having trouble answering right now. Please try again in a moment.' }] });
  t.teardown(() => host.close());
  const post = async (fields: Record<string, string>) => {
    const raw = new URLSearchParams(fields).toString();
    const started = Date.now();
    const response = await host.request('/webhooks/twilio_voice/webhook', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...signFor(WEBHOOK_URL)(raw) }, body: raw });
    return { ...response, ms: Date.now() - started };
  };
  return { host, post };
}

const APOLOGY = 'Sorry, I am having trouble answering right now. Please try again in a moment.';

test('a bot slower than response_timeout: the call hears the apology before the deadline, and goes on listening', async (t) => {
  const { post, host } = await slowHost(t, 2_000, { responseTimeout: 0.3 });
  const response = await post(said('are you there'));
  t.is(response.status, 200);
  t.true(response.ms < 1_500, `answered after ${response.ms} ms`);
  t.is(response.headers.get('content-type'), 'text/xml; charset=utf-8');
  t.is(response.text, `${XML}<Response>${gather(APOLOGY)}${say(APOLOGY)}</Gather></Response>`);
  t.regex(host.logs.text, /did not answer within response_timeout/);
});

test('the default response_timeout answers within Twilio\'s 15 s', (t) => {
  const channel = TwilioVoiceInput.fromCredentials(CREDENTIALS);
  t.true(channel.credentials.response_timeout < 15);
  t.throws(() => TwilioVoiceInput.fromCredentials({ ...CREDENTIALS, response_timeout: 15 }), { instanceOf: CredentialsError, message: /response_timeout/ });
});

test('a bot past --bot-timeout (shorter than response_timeout): the host\'s apology is what the call hears', async (t) => {
  const { post } = await slowHost(t, 2_000, { responseTimeout: 5, botTimeoutMs: 200, apology: [{ text: 'One moment 🙏 please.' }] });
  const response = await post(said('are you there'));
  t.is(response.status, 200);
  t.true(response.ms < 1_500, `answered after ${response.ms} ms`);
  t.is(response.text, `${XML}<Response>${gather('One moment please.')}${say('One moment please.')}</Gather></Response>`);
});

test('--bot-apology "": a late bot is answered with silence, and the call goes on listening', async (t) => {
  const { post } = await slowHost(t, 2_000, { responseTimeout: 0.2, apology: [] });
  const response = await post(said('are you there'));
  t.is(response.text, `${XML}<Response>${gather('')}</Gather></Response>`);
});

test('credentials: auth_token is required unless allow_unverified: true', (t) => {
  t.throws(() => TwilioVoiceInput.fromCredentials({}), { instanceOf: CredentialsError, message: /missing "auth_token"/ });
  const open = TwilioVoiceInput.fromCredentials({ allow_unverified: true });
  t.true(open.unverified);
  t.like(open.credentials, { initial_prompt: 'hello', reprompt_fallback_phrase: "I'm sorry I didn't get that could you rephrase.", assistant_voice: 'woman', speech_timeout: '5', speech_model: 'default', enhanced: false });
  t.like(open.gatherSettings(), { action: '/webhooks/twilio_voice/webhook', voice: 'woman', speechTimeout: '5', speechModel: 'default', enhanced: 'false' });
});

test("credentials: the combinations Rasa refuses are refused, naming the key", (t) => {
  const base = { auth_token: AUTH_TOKEN };
  const refused: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ assistant_voice: 'robot' }, 'assistant_voice', /"robot" is not a voice/],
    [{ speech_timeout: 'soon' }, 'speech_timeout', /only a whole number of seconds or "auto"/],
    [{ speech_model: 'video' }, 'speech_model', /choose one of "default", "numbers_and_commands" or "phone_call"/],
    [{ enhanced: 'maybe' }, 'enhanced', /give true or false/],
    [{ enhanced: true, speech_model: 'default' }, 'enhanced', /needs speech_model "phone_call"/],
    [{ speech_timeout: 'auto' }, 'speech_timeout', /"auto" needs speech_model "numbers_and_commands"/],
  ];
  for (const [keys, key, message] of refused) {
    const error = t.throws(() => TwilioVoiceInput.fromCredentials({ ...base, ...keys }), { instanceOf: CredentialsError, message });
    t.is(error?.key, key);
  }
  // Accepted: YAML numbers and booleans, Polly and Google voices Twilio has beyond Rasa's list.
  t.notThrows(() => TwilioVoiceInput.fromCredentials({ ...base, speech_timeout: 3, enhanced: 'True', speech_model: 'phone_call', assistant_voice: 'Polly.Joanna-Neural' }));
  t.notThrows(() => TwilioVoiceInput.fromCredentials({ ...base, assistant_voice: 'Google.en-US-Neural2-F' }));
  t.notThrows(() => checkSpeechSettings({ assistant_voice: 'alice', speech_timeout: 'auto', speech_model: 'numbers_and_commands', enhanced: 'false' }));
});

test('buttons read out: the text, a full stop when it has none, then the titles', (t) => {
  t.is(buttonsSpoken('How are you', MOODS), 'How are you. Choose one of: great, super sad.');
  t.is(buttonsSpoken('Pick:', MOODS), 'Pick: Choose one of: great, super sad.');
  t.is(buttonsSpoken('', MOODS), 'Choose one of: great, super sad.');
  t.is(buttonsSpoken('Nothing to pick', []), 'Nothing to pick');
});

test('parseCall: a call without speech is a start unless it came back to a <Gather>; over when Twilio says so', (t) => {
  t.like(parseCall(call(), false, 'hi'), { kind: 'start', text: 'hi', senderId: CALLER });
  t.like(parseCall(said(undefined), true, 'hi'), { kind: 'silence', senderId: CALLER });
  t.like(parseCall(said('  yes  '), true, 'hi'), { kind: 'speech', text: 'yes' });
  t.like(parseCall(said('   '), true, 'hi'), { kind: 'silence' });
  t.like(parseCall(call({ CallStatus: 'busy' }), false, 'hi'), { kind: 'ended', status: 'busy' });
  t.like(parseCall({ CallSid: CALL_SID }, false, 'hi'), { reason: 'missing form field "From"' });
});

test("one bot on chat and phone (README): /greet on rest and on a call, the hang-up on a call", async (t) => {
  const { default: RestInput } = await import('../../channels/rest/index.js');
  // The README's greet-bot.js.
  const bot = new ScriptedBot((message) => {
    if (message.text === '/greet') return [{ text: 'Hi! How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_sad' }] }];
    if (/bye/i.test(message.text)) return [{ text: 'Goodbye!' }, { custom: { hangup: true } }];
    return [{ text: `You said: ${message.text}` }];
  });
  const voice = TwilioVoiceInput.fromCredentials({ auth_token: AUTH_TOKEN, webhook_url: WEBHOOK_URL, initial_prompt: '/greet' });
  const host = await startTestHost([RestInput.fromCredentials({}), voice], { bot });
  t.teardown(() => host.close());
  const chat = await host.request('/webhooks/rest/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sender: 'u1', message: '/greet' }) });
  t.deepEqual(chat.json, [{ recipient_id: 'u1', text: 'Hi! How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_sad' }] }]);
  const post = async (fields: Record<string, string>, query = '') => {
    const raw = new URLSearchParams(fields).toString();
    return host.request(`/webhooks/twilio_voice/webhook${query}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...signFor(`${WEBHOOK_URL}${query}`)(raw) }, body: raw });
  };
  const greeting = 'Hi! How are you? Choose one of: great, sad.';
  const attributes = 'actionOnEmptyResult="true" enhanced="false" input="speech" speechModel="default" speechTimeout="5"';
  const start = await post(call());
  t.is(start.text, `${XML}<Response><Gather action="${WEBHOOK_URL}?reprompt=${encodeURIComponent(greeting)}" ${attributes}><Say voice="woman">${greeting}</Say></Gather></Response>`);
  const bye = await post(said('bye then'), `?reprompt=${encodeURIComponent(greeting)}`);
  t.is(bye.text, `${XML}<Response><Say voice="woman">Goodbye!</Say><Pause length="1"/><Hangup/></Response>`);
  t.deepEqual(bot.received.map((m) => [m.inputChannel, m.text]), [['rest', '/greet'], ['twilio_voice', '/greet'], ['twilio_voice', 'bye then']]);
});

test('a webhook_url with a query of its own: the <Gather action> adds the reprompt to it, and its result verifies', async (t) => {
  const url = 'https://bot.example.com/webhooks/twilio_voice/webhook?tenant=acme';
  const bot = new ScriptedBot([{ text: 'Hello there' }]);
  const host = await startTestHost(TwilioVoiceInput.fromCredentials({ auth_token: AUTH_TOKEN, webhook_url: url }), { bot });
  t.teardown(() => host.close());
  const post = async (fields: Record<string, string>, signedUrl: string, query: string) => {
    const raw = new URLSearchParams(fields).toString();
    return host.request(`/webhooks/twilio_voice/webhook${query}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...signFor(signedUrl)(raw) }, body: raw });
  };
  const start = await post(call(), url, '?tenant=acme');
  t.is(start.status, 200);
  const action = `${url}&reprompt=Hello%20there`;
  t.true(start.text.includes(`<Gather action="${action.replace(/&/g, '&amp;')}"`), start.text);
  const silence = await post(said(undefined), action, '?tenant=acme&reprompt=Hello%20there');
  t.is(silence.status, 200);
  t.true(silence.text.includes('<Say voice="woman">Hello there</Say>'), silence.text);
  t.is((await post(said(undefined), url, '?tenant=acme&reprompt=Hello%20there')).status, 401, 'signed for another URL');
});

test('the CLI refuses a combination Rasa refuses: exit code 2, the key named', async (t) => {
  const { makeProject, runCli } = await import('../fixtures.js');
  const project = makeProject();
  t.teardown(() => project.remove());
  const file = project.write('credentials.yml', 'twilio_voice:\n  auth_token: abc\n  speech_timeout: auto\n');
  const result = await runCli(['--credentials', file, '--port', '0']);
  t.is(result.code, 2);
  t.regex(result.stderr, /twilio_voice: "speech_timeout": "auto" needs speech_model "numbers_and_commands"/);
});
