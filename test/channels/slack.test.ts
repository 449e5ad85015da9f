import test, { type ExecutionContext } from 'ava';
import nock from 'nock';
import { createHmac } from 'node:crypto';
import SlackInput from '../../channels/slack/index.js';
import { cleanText } from '../../channels/slack/parse.js';
import { verifySlackRequest } from '../../channels/slack/verify.js';
import { ScriptedBot, runChannelCases, startServer } from '../harness.js';

const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const TOKEN = 'xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy';
const POST = 'https://slack.com/api/chat.postMessage';
const AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

/** Slack's request signing, as Slack computes it: `v0=` + HMAC-SHA256(secret, `v0:{ts}:{raw body}`). */
function signAt(raw: string, timestamp: number, secret = SECRET): Record<string, string> {
  const ts = String(timestamp);
  return { 'x-slack-request-timestamp': ts, 'x-slack-signature': `v0=${createHmac('sha256', secret).update(`v0:${ts}:${raw}`).digest('hex')}` };
}
const sign = (raw: string) => signAt(raw, Math.floor(Date.now() / 1000));

const AUTHORIZATIONS = [{ enterprise_id: null, team_id: 'T123ABC456', user_id: 'U0BOT', is_bot: true, is_enterprise_install: false }];

/** An Events API `event_callback`, shaped as in Slack's documentation. */
function eventCallback(event: Record<string, unknown>, eventId = 'Ev123ABC456'): Record<string, unknown> {
  return {
    token: 'XXYYZZ',
    team_id: 'T123ABC456',
    api_app_id: 'A123ABC456',
    event,
    type: 'event_callback',
    authed_users: ['U0BOT'],
    authorizations: AUTHORIZATIONS,
    event_id: eventId,
    event_time: 1355517523,
  };
}

const DM = {
  type: 'message',
  channel: 'D024BE91L',
  user: 'U2147483697',
  text: 'Hello hello can you hear me?',
  ts: '1355517523.000005',
  event_ts: '1355517523.000005',
  channel_type: 'im',
};
const dm = (eventId: string, text = DM.text) => eventCallback({ ...DM, text }, eventId);

const MENTION = {
  type: 'app_mention',
  user: 'U061F7AUR',
  text: "<@U0BOT> what's the weather? see <https://example.com/forecast|the forecast> &amp; more",
  ts: '1515449522.000016',
  channel: 'C123ABC456',
  event_ts: '1515449522.000016',
};

/** A block_actions payload as Slack documents it, with the clicked element. */
function blockActions(action: Record<string, unknown>): Record<string, string> {
  return {
    payload: JSON.stringify({
      type: 'block_actions',
      team: { id: 'T9TK3CUKW', domain: 'example' },
      user: { id: 'UA8RXUSPL', username: 'jtorrance', team_id: 'T9TK3CUKW' },
      api_app_id: 'AABA1ABCD',
      token: '9s8d9as89d8as9d8as989',
      container: { type: 'message', message_ts: '1548261231.000200', channel_id: 'CBR2V3XEX', is_ephemeral: false },
      trigger_id: '12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3',
      channel: { id: 'CBR2V3XEX', name: 'review-updates' },
      message: { bot_id: 'BAH5CA16Z', type: 'message', text: 'Pick one', user: 'U0BOT', ts: '1548261231.000200' },
      response_url: 'https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209',
      actions: [action],
    }),
  };
}

type Answer = { text: string; json: unknown; headers: Headers };
const noRetry = (t: ExecutionContext, response: Answer) => t.is(response.headers.get('x-slack-no-retry'), '1');
const noNoRetry = (t: ExecutionContext, response: Answer) => t.is(response.headers.get('x-slack-no-retry'), null);

runChannelCases(test, {
  channel: SlackInput,
  credentials: { slack_token: TOKEN, slack_signing_secret: SECRET },
  cases: [
    // Verification and the handshake.
    {
      label: 'slack: signed url_verification answers its challenge',
      body: { token: 'Jhj5dZrVaK7ZwHHjRyZWjbDl', challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P', type: 'url_verification' },
      sign,
      status: 200,
      response: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P',
      received: [],
    },
    {
      label: 'slack: unsigned url_verification is 401, challenge not echoed',
      body: { token: 'Jhj5dZrVaK7ZwHHjRyZWjbDl', challenge: 'secret-challenge', type: 'url_verification' },
      status: 401,
      response: (t: ExecutionContext, r: Answer) => t.false(r.text.includes('secret-challenge')),
    },
    {
      label: 'slack: a bad signature is 401 and the bot is never called',
      body: dm('EvBADSIG'),
      sign: (raw) => signAt(raw, Math.floor(Date.now() / 1000), 'not-the-secret'),
      status: 401,
      received: [],
    },
    {
      label: 'slack: a missing signature (timestamp only) is 401, not a 500',
      body: dm('EvNOSIG'),
      headers: { 'x-slack-request-timestamp': String(Math.floor(Date.now() / 1000)) },
      status: 401,
      received: [],
    },
    {
      label: 'slack: a correctly signed request more than 5 minutes old is a replay: 401',
      body: dm('EvREPLAY'),
      sign: (raw) => signAt(raw, Math.floor(Date.now() / 1000) - 301),
      status: 401,
      received: [],
    },
    {
      label: 'slack: a signature over a different body is 401',
      body: dm('EvTAMPER'),
      sign: () => sign(JSON.stringify(dm('EvTAMPER', 'something else'))),
      status: 401,
      received: [],
    },
    {
      label: 'slack: malformed JSON (signed) is 400',
      body: '{"type": "event_callback", "event": {',
      headers: { 'content-type': 'application/json' },
      sign,
      status: 400,
      received: [],
    },
    {
      label: 'slack: an event_callback without its event is 400',
      body: { type: 'event_callback', event_id: 'EvNOEVENT', team_id: 'T1' },
      sign,
      status: 400,
      response: { error: 'event_callback without an "event" object' },
      received: [],
    },
    {
      label: 'slack: a form post without payload is 400',
      form: { command: '/weather' },
      sign,
      status: 400,
      received: [],
    },

    // Incoming messages.
    {
      label: 'slack: a DM reaches the bot with its metadata, answered 200 empty at once',
      body: dm('Ev0DM'),
      sign,
      status: 200,
      response: (t: ExecutionContext, r: Answer) => {
        t.is(r.text, '');
        noNoRetry(t, r);
      },
      answers: [],
      received: [
        {
          text: 'Hello hello can you hear me?',
          senderId: 'U2147483697',
          // The message itself (channel:ts), not the event_id: one message, however many events carry it.
          messageId: 'D024BE91L:1355517523.000005',
          inputChannel: 'slack',
          metadata: { out_channel: 'D024BE91L', thread_id: '1355517523.000005', ts: '1355517523.000005', users: ['U0BOT'] },
        },
      ],
    },
    {
      label: 'slack: app_mention has the bot mention stripped, links and escapes restored, and is answered in its channel',
      roundTrip: true,
      body: eventCallback(MENTION, 'Ev0MENTION'),
      sign,
      status: 200,
      answers: [{ text: 'Sunny.' }],
      received: [{ text: "what's the weather? see the forecast & more", senderId: 'U061F7AUR', metadata: { out_channel: 'C123ABC456' } }],
      outgoing: [{ url: POST, headers: AUTH, body: { channel: 'C123ABC456', text: 'Sunny.' } }],
    },
    {
      label: 'slack: a thread reply in a DM: thread_id is thread_ts, ts its own',
      body: eventCallback({ ...DM, text: 'in the thread', ts: '1355517600.000010', thread_ts: '1355517523.000005' }, 'Ev0THREAD2'),
      sign,
      status: 200,
      answers: [],
      received: [{ text: 'in the thread', metadata: { out_channel: 'D024BE91L', thread_id: '1355517523.000005', ts: '1355517600.000010' } }],
    },
    {
      label: 'slack: the bot\u2019s own message (bot_id, its user) is ignored',
      body: eventCallback({ ...DM, user: 'U0BOT', bot_id: 'B0BOT', text: 'ok' }, 'Ev0OWN'),
      sign,
      status: 200,
      response: 'Bot message delivered.',
      received: [],
    },
    {
      label: 'slack: a bot_message from an integration is ignored',
      body: eventCallback({ type: 'message', subtype: 'bot_message', ts: '1358877455.000010', text: 'Pushing is the answer', bot_id: 'BB12033', username: 'github', channel: 'D024BE91L', channel_type: 'im' }, 'Ev0BOTMSG'),
      sign,
      status: 200,
      received: [],
    },
    {
      label: 'slack: message_changed is ignored',
      body: eventCallback(
        {
          type: 'message',
          subtype: 'message_changed',
          hidden: true,
          channel: 'D024BE91L',
          channel_type: 'im',
          ts: '1358878755.000001',
          message: { type: 'message', user: 'U2147483697', text: 'Hello, world!', ts: '1355517523.000005', edited: { user: 'U2147483697', ts: '1358878755.000001' } },
        },
        'Ev0CHANGED',
      ),
      sign,
      status: 200,
      received: [],
    },
    {
      label: 'slack: message_deleted is ignored',
      body: eventCallback({ type: 'message', subtype: 'message_deleted', hidden: true, channel: 'D024BE91L', channel_type: 'im', ts: '1358878755.000001', deleted_ts: '1358878749.000002' }, 'Ev0DELETED'),
      sign,
      status: 200,
      received: [],
    },
    {
      label: 'slack: a plain channel message without a mention is not for the bot (as Rasa)',
      body: eventCallback({ ...DM, channel: 'C123ABC456', channel_type: 'channel' }, 'Ev0CHAN'),
      sign,
      status: 200,
      response: 'channel not supported.',
      received: [],
    },
    {
      label: 'slack: other event types are answered 200 and ignored',
      body: eventCallback({ type: 'reaction_added', user: 'U2147483697', reaction: 'thumbsup', item: { type: 'message', channel: 'C1', ts: '1' } }, 'Ev0REACT'),
      sign,
      status: 200,
      received: [],
    },

    // Interactivity.
    {
      label: 'slack: a block_actions button click (form-encoded, signed) becomes the button value',
      roundTrip: true,
      form: blockActions({ action_id: 'WaXA', block_id: '=qXel', text: { type: 'plain_text', text: 'View', emoji: true }, value: '/mood_great', type: 'button', action_ts: '1548426417.840180' }),
      sign,
      status: 200,
      answers: [{ text: 'Great!' }],
      received: [
        {
          text: '/mood_great',
          senderId: 'UA8RXUSPL',
          messageId: '1548426417.840180',
          metadata: { out_channel: 'CBR2V3XEX', thread_id: '1548261231.000200', ts: '1548261231.000200' },
        },
      ],
      outgoing: [{ url: POST, headers: AUTH, body: { channel: 'CBR2V3XEX', text: 'Great!' } }],
    },
    {
      label: 'slack: a static_select choice becomes the selected option value',
      form: blockActions({ type: 'static_select', action_id: 'mood', block_id: 'b1', selected_option: { text: { type: 'plain_text', text: 'Sad' }, value: '/mood_unhappy' }, action_ts: '1548426417.900000' }),
      sign,
      status: 200,
      answers: [],
      received: [{ text: '/mood_unhappy', senderId: 'UA8RXUSPL' }],
    },
    {
      label: 'slack: a link button (no value) is answered 200 and not sent to the bot',
      form: blockActions({ type: 'button', action_id: 'docs', block_id: 'b2', text: { type: 'plain_text', text: 'Docs' }, url: 'https://example.com', action_ts: '1548426418.000000' }),
      sign,
      status: 200,
      received: [],
    },
    {
      label: 'slack: an interactive payload that is not JSON (signed) is 400',
      form: { payload: '{"type": "block_actions",' },
      sign,
      status: 400,
      received: [],
    },
    {
      label: 'slack: an unsigned interactive payload is 401',
      form: blockActions({ type: 'button', value: '/hack', action_ts: '1' }),
      status: 401,
      received: [],
    },

    // Retries and duplicates.
    {
      // Its first delivery never got here (Slack's 3 s ran out on the way): dropping it, as Rasa does, lost the message.
      label: 'slack: a retry with reason http_timeout of a message never seen is processed and answered, with X-Slack-No-Retry',
      body: dm('Ev0TIMEOUT'),
      headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' },
      sign,
      status: 200,
      response: noRetry,
      answers: [{ text: 'got it' }],
      received: [{ text: DM.text, messageId: 'D024BE91L:1355517523.000005' }],
      outgoing: [{ url: POST, headers: AUTH, body: { channel: 'D024BE91L', text: 'got it' } }],
    },
    {
      label: 'slack: the same event_id delivered twice is processed once; the second answer says X-Slack-No-Retry',
      body: dm('Ev0TWICE'),
      sign,
      repeat: 2,
      status: 200,
      response: noRetry,
      answers: [{ text: 'once' }],
      received: [{ text: DM.text, messageId: 'D024BE91L:1355517523.000005' }],
      outgoing: [{ url: POST, body: { channel: 'D024BE91L', text: 'once' } }],
    },
    {
      label: 'slack: a retry of an event never seen (reason http_error) is processed once',
      body: dm('Ev0RETRYNEW'),
      headers: { 'x-slack-retry-num': '2', 'x-slack-retry-reason': 'http_error' },
      sign,
      status: 200,
      response: noNoRetry,
      answers: [],
      received: [{ text: DM.text, messageId: 'D024BE91L:1355517523.000005' }],
    },

    // Answers: each kind's exact chat.postMessage call.
    {
      label: 'slack out: text, split at blank lines into one message per part',
      roundTrip: true,
      body: dm('Ev1TEXT'),
      sign,
      status: 200,
      answers: [{ text: 'Hey! How are you?\n\nI am a bot.' }],
      outgoing: [
        { url: POST, headers: AUTH, body: { channel: 'D024BE91L', text: 'Hey! How are you?' } },
        { url: POST, headers: AUTH, body: { channel: 'D024BE91L', text: 'I am a bot.' } },
      ],
    },
    {
      label: 'slack out: image as an image block, the URL as text',
      roundTrip: true,
      body: dm('Ev1IMAGE'),
      sign,
      status: 200,
      answers: [{ image: 'https://i.imgur.com/nGF1K8f.jpg' }],
      outgoing: [
        {
          url: POST,
          headers: AUTH,
          body: {
            channel: 'D024BE91L',
            text: 'https://i.imgur.com/nGF1K8f.jpg',
            blocks: [{ type: 'image', image_url: 'https://i.imgur.com/nGF1K8f.jpg', alt_text: 'https://i.imgur.com/nGF1K8f.jpg' }],
          },
        },
      ],
    },
    {
      label: 'slack out: buttons as a section and an actions block of buttons',
      roundTrip: true,
      body: dm('Ev1BUTTONS'),
      sign,
      status: 200,
      answers: [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }] }],
      outgoing: [
        {
          url: POST,
          headers: AUTH,
          body: {
            channel: 'D024BE91L',
            text: 'How are you?',
            blocks: [
              { type: 'section', text: { type: 'plain_text', text: 'How are you?' } },
              {
                type: 'actions',
                elements: [
                  { type: 'button', text: { type: 'plain_text', text: 'great' }, value: '/mood_great' },
                  { type: 'button', text: { type: 'plain_text', text: 'sad' }, value: '/mood_unhappy' },
                ],
              },
            ],
          },
        },
      ],
    },
    {
      label: 'slack out: 27 quick replies are split into actions blocks of 25 and 2, none dropped',
      roundTrip: true,
      body: dm('Ev1QUICK'),
      sign,
      status: 200,
      answers: [{ text: 'Pick a number', quick_replies: Array.from({ length: 27 }, (_, i) => ({ title: `n${i + 1}`, payload: `/pick{"n":${i + 1}}` })) }],
      outgoing: [
        {
          url: POST,
          headers: AUTH,
          body: {
            channel: 'D024BE91L',
            text: 'Pick a number',
            blocks: [
              { type: 'section', text: { type: 'plain_text', text: 'Pick a number' } },
              { type: 'actions', elements: Array.from({ length: 25 }, (_, i) => ({ type: 'button', text: { type: 'plain_text', text: `n${i + 1}` }, value: `/pick{"n":${i + 1}}` })) },
              { type: 'actions', elements: [26, 27].map((n) => ({ type: 'button', text: { type: 'plain_text', text: `n${n}` }, value: `/pick{"n":${n}}` })) },
            ],
          },
        },
      ],
    },
    {
      label: 'slack out: elements as sections with an image accessory, followed by their buttons',
      roundTrip: true,
      body: dm('Ev1ELEMENTS'),
      sign,
      status: 200,
      answers: [
        {
          elements: [
            { title: 'Hotel Bellevue', subtitle: '4 stars', image_url: 'https://example.com/bellevue.jpg', buttons: [{ title: 'Book', payload: '/book{"hotel":"bellevue"}' }] },
            { title: 'Pension Rosa' },
          ],
        },
      ],
      outgoing: [
        {
          url: POST,
          headers: AUTH,
          body: {
            channel: 'D024BE91L',
            text: 'Hotel Bellevue : 4 stars\nPension Rosa',
            blocks: [
              {
                type: 'section',
                text: { type: 'mrkdwn', text: '*Hotel Bellevue*\n4 stars' },
                accessory: { type: 'image', image_url: 'https://example.com/bellevue.jpg', alt_text: 'Hotel Bellevue' },
              },
              { type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Book' }, value: '/book{"hotel":"bellevue"}' }] },
              { type: 'section', text: { type: 'mrkdwn', text: '*Pension Rosa*' } },
            ],
          },
        },
      ],
    },
    {
      label: 'slack out: attachment as attachments',
      roundTrip: true,
      body: dm('Ev1ATTACH'),
      sign,
      status: 200,
      answers: [{ attachment: { fallback: 'Report', color: '#36a64f', title: 'Report', title_link: 'https://example.com/r' } }],
      outgoing: [
        {
          url: POST,
          headers: AUTH,
          body: { channel: 'D024BE91L', attachments: [{ fallback: 'Report', color: '#36a64f', title: 'Report', title_link: 'https://example.com/r' }] },
        },
      ],
    },
    {
      label: 'slack out: custom JSON is merged into the call, its channel wins',
      roundTrip: true,
      body: dm('Ev1CUSTOM'),
      sign,
      status: 200,
      answers: [{ custom: { channel: 'C0OTHER', text: 'fallback', blocks: [{ type: 'divider' }], unfurl_links: false } }],
      outgoing: [{ url: POST, headers: AUTH, body: { channel: 'C0OTHER', text: 'fallback', blocks: [{ type: 'divider' }], unfurl_links: false } }],
    },
    {
      label: 'slack out: custom JSON without a channel goes to the message\u2019s channel',
      roundTrip: true,
      body: dm('Ev1CUSTOM2'),
      sign,
      status: 200,
      answers: [{ custom: { text: 'hi', mrkdwn: false } }],
      outgoing: [{ url: POST, body: { channel: 'D024BE91L', text: 'hi', mrkdwn: false } }],
    },

    // Platform failures.
    {
      label: 'slack out: ok:false ratelimited (Retry-After: 0) is retried, then succeeds',
      body: dm('Ev2RATE'),
      sign,
      status: 200,
      answers: [{ text: 'eventually' }],
      outgoing: [
        { url: POST, body: { channel: 'D024BE91L', text: 'eventually' }, reply: { status: 200, body: { ok: false, error: 'ratelimited' }, headers: { 'retry-after': '0' } } },
        { url: POST, body: { channel: 'D024BE91L', text: 'eventually' } },
      ],
    },
    {
      label: 'slack out: HTTP 429 with Retry-After is retried, then succeeds',
      roundTrip: true,
      body: dm('Ev2HTTP429'),
      sign,
      status: 200,
      answers: [{ text: 'later' }],
      outgoing: [
        { url: POST, body: { channel: 'D024BE91L', text: 'later' }, reply: { status: 429, body: { ok: false, error: 'ratelimited' }, headers: { 'retry-after': '0' } } },
        { url: POST, body: { channel: 'D024BE91L', text: 'later' } },
      ],
    },
    {
      label: 'slack out: ok:false with another error is not retried, and the rest of the reply is dropped',
      body: dm('Ev2FAIL'),
      sign,
      status: 200,
      answers: [{ text: 'first' }, { text: 'second' }],
      outgoing: [{ url: POST, body: { channel: 'D024BE91L', text: 'first' }, reply: { body: { ok: false, error: 'channel_not_found' } } }],
    },
  ],
});

runChannelCases(test, {
  channel: SlackInput,
  credentials: { slack_token: TOKEN, slack_signing_secret: SECRET, use_threads: true, conversation_granularity: 'thread', api_url: 'https://slack.internal.example.com/api/' },
  cases: [
    {
      label: 'slack use_threads: the answer goes to the thread (thread_ts), through api_url; sender per thread',
      roundTrip: true,
      body: eventCallback({ ...MENTION, text: '<@U0BOT> hi', ts: '1515449600.000020', thread_ts: '1515449522.000016' }, 'Ev3THREAD'),
      sign,
      status: 200,
      answers: [{ text: 'in thread' }, { buttons: [{ title: 'yes', payload: '/affirm' }] }],
      received: [{ text: 'hi', senderId: 'U061F7AUR_C123ABC456_1515449522.000016', metadata: { thread_id: '1515449522.000016' } }],
      outgoing: [
        { url: 'https://slack.internal.example.com/api/chat.postMessage', headers: AUTH, body: { channel: 'C123ABC456', thread_ts: '1515449522.000016', text: 'in thread' } },
        {
          url: 'https://slack.internal.example.com/api/chat.postMessage',
          body: {
            channel: 'C123ABC456',
            thread_ts: '1515449522.000016',
            text: 'yes',
            blocks: [{ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'yes' }, value: '/affirm' }] }],
          },
        },
      ],
    },
    {
      label: 'slack use_threads: a top-level message is answered in a new thread under it',
      roundTrip: true,
      body: dm('Ev3TOP'),
      sign,
      status: 200,
      answers: [{ text: 'threaded' }],
      received: [{ senderId: 'U2147483697_D024BE91L_1355517523.000005' }],
      outgoing: [{ url: 'https://slack.internal.example.com/api/chat.postMessage', body: { channel: 'D024BE91L', thread_ts: '1355517523.000005', text: 'threaded' } }],
    },
  ],
});

runChannelCases(test, {
  channel: SlackInput,
  credentials: { slack_token: TOKEN, slack_signing_secret: SECRET, slack_channel: 'C0LISTEN', use_threads: true, conversation_granularity: 'channel', errors_ignore_retry: ['http_timeout', 'http_error'] },
  cases: [
    {
      label: 'slack slack_channel: messages there reach the bot without a mention; sender per channel',
      body: eventCallback({ ...DM, channel: 'C0LISTEN', channel_type: 'channel', text: 'anyone?' }, 'Ev4LISTEN'),
      sign,
      status: 200,
      answers: [{ text: 'me' }],
      received: [{ text: 'anyone?', senderId: 'U2147483697_C0LISTEN' }],
      outgoing: [{ url: POST, body: { channel: 'C0LISTEN', thread_ts: '1355517523.000005', text: 'me' } }],
    },
    {
      label: 'slack slack_channel: answers to a DM stay in the DM (in its thread), never in slack_channel',
      roundTrip: true,
      body: dm('Ev4DM'),
      sign,
      status: 200,
      answers: [{ text: 'just between us' }],
      outgoing: [{ url: POST, body: { channel: 'D024BE91L', thread_ts: '1355517523.000005', text: 'just between us' } }],
    },
    {
      label: 'slack slack_channel: a mention in another channel is answered in that channel, in its thread',
      roundTrip: true,
      body: eventCallback({ ...MENTION, text: '<@U0BOT> status?' }, 'Ev4MENTION'),
      sign,
      status: 200,
      answers: [{ text: 'all green' }],
      received: [{ text: 'status?', senderId: 'U061F7AUR_C123ABC456', metadata: { out_channel: 'C123ABC456' } }],
      outgoing: [{ url: POST, body: { channel: 'C123ABC456', thread_ts: '1515449522.000016', text: 'all green' } }],
    },
    {
      label: 'slack slack_channel: a group DM (mpim) mention is answered in the group DM',
      roundTrip: true,
      body: eventCallback({ ...MENTION, channel: 'G0GROUPDM', channel_type: 'mpim', text: '<@U0BOT> hi all' }, 'Ev4MPIM'),
      sign,
      status: 200,
      answers: [{ text: 'hi' }],
      outgoing: [{ url: POST, body: { channel: 'G0GROUPDM', thread_ts: '1515449522.000016', text: 'hi' } }],
    },
    {
      label: 'slack slack_channel: a click that carries no channel (App Home) is answered in slack_channel, without a thread',
      roundTrip: true,
      form: { payload: JSON.stringify({ ...JSON.parse(blockActions({ type: 'button', value: '/affirm', action_ts: '1548426417.840180' }).payload!), channel: undefined }) },
      sign,
      status: 200,
      answers: [{ text: 'noted' }],
      received: [{ text: '/affirm', senderId: 'UA8RXUSPL' }],
      outgoing: [{ url: POST, body: { channel: 'C0LISTEN', text: 'noted' } }],
    },
    {
      label: 'slack errors_ignore_retry: a configured reason (http_error) gets X-Slack-No-Retry; its message, never seen, is processed',
      body: dm('Ev4RETRY'),
      headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_error' },
      sign,
      status: 200,
      response: noRetry,
      answers: [],
      received: [{ text: DM.text }],
    },
  ],
});

runChannelCases(test, {
  channel: SlackInput,
  credentials: { slack_token: TOKEN, allow_unverified: true },
  cases: [
    {
      label: 'slack allow_unverified: without a signing secret, unsigned requests are accepted',
      body: dm('Ev5UNVERIFIED'),
      status: 200,
      answers: [],
      received: [{ text: DM.text }],
    },
  ],
});

test.serial('slack: an ok:false failure for one sender is logged, and other senders keep being answered', async (t) => {
  offline(t);
  const channel = SlackInput.fromCredentials({ slack_token: TOKEN, slack_signing_secret: SECRET });
  const bot = new ScriptedBot((message) => [{ text: `hello ${message.senderId}` }]);
  const { request, logs } = await startServer(t, [channel], { bot });
  const bodies: unknown[] = [];
  nock('https://slack.com')
    .post('/api/chat.postMessage', (body: { channel?: string }) => body.channel === 'D0ALICE')
    .reply(200, (_uri, body) => (bodies.push(body), { ok: false, error: 'not_in_channel' }), { 'content-type': 'application/json' })
    .post('/api/chat.postMessage', (body: { channel?: string }) => body.channel === 'D0BOB')
    .times(2)
    .reply(200, (_uri, body) => (bodies.push(body), { ok: true, ts: '1.2' }), { 'content-type': 'application/json' });

  // Three messages: each its own ts (one message is one channel + ts).
  const send = async (user: string, channelId: string, eventId: string, ts: string) => {
    const raw = JSON.stringify(eventCallback({ ...DM, user, channel: channelId, text: 'hi', ts, event_ts: ts }, eventId));
    return request('/webhooks/slack/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...sign(raw) }, body: raw });
  };
  t.is((await send('UALICE', 'D0ALICE', 'Ev6A', '1355517600.000001')).status, 200);
  t.is((await send('UBOB', 'D0BOB', 'Ev6B', '1355517600.000002')).status, 200);
  t.is((await send('UBOB', 'D0BOB', 'Ev6C', '1355517600.000003')).status, 200);
  await bot.waitFor(3);
  const deadline = Date.now() + 3_000;
  while (bodies.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.deepEqual(bodies, [
    { channel: 'D0ALICE', text: 'hello UALICE' },
    { channel: 'D0BOB', text: 'hello UBOB' },
    { channel: 'D0BOB', text: 'hello UBOB' },
  ]);
  while (!logs.text.includes('sending an answer failed') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.regex(logs.text, /not_in_channel/);
  t.regex(logs.text, /sending an answer failed/);
  t.false(logs.text.includes(TOKEN), 'the token is never logged');
  t.false(logs.text.includes(SECRET), 'the signing secret is never logged');
});

test('slack verify: pure, never throws, rejects what it must', (t) => {
  const now = 1_700_000_000_000;
  const raw = '{"type":"event_callback"}';
  const good = signAt(raw, now / 1000);
  t.true(verifySlackRequest(raw, good, SECRET, now));
  t.true(verifySlackRequest(raw, { ...good, 'x-slack-signature': good['x-slack-signature']!.toUpperCase().replace('V0=', 'v0=') }, SECRET, now));
  t.true(verifySlackRequest(raw, good, SECRET, now + 299_000), 'within 300 s');
  t.regex(String(verifySlackRequest(raw, good, SECRET, now + 301_000)), /away from now/);
  t.regex(String(verifySlackRequest(raw, good, SECRET, now - 301_000)), /away from now/, 'a timestamp from the future too');
  t.regex(String(verifySlackRequest(raw, {}, SECRET, now)), /missing X-Slack-Signature/);
  t.regex(String(verifySlackRequest(raw, { 'x-slack-signature': good['x-slack-signature'] }, SECRET, now)), /missing X-Slack-Request-Timestamp/);
  t.regex(String(verifySlackRequest(raw, { ...good, 'x-slack-request-timestamp': 'yesterday' }, SECRET, now)), /malformed/);
  t.regex(String(verifySlackRequest(raw, { ...good, 'x-slack-signature': 'garbage' }, SECRET, now)), /mismatch/);
  t.regex(String(verifySlackRequest(`${raw} `, good, SECRET, now)), /mismatch/, 'the raw bytes, not re-serialised JSON');
  t.not(verifySlackRequest(raw, good, '', now), true, 'an empty secret verifies nothing');
});

/**
 * Rasa's mention clean-up, input → output, from its own tests (tests/core/channels/test_slack.py,
 * `test_slack_message_sanitization`): a removed mention leaves a space where two words would otherwise join.
 */
const MENTION_CLEANUP: Array<[string, string]> = [
  ['You can sit here <@U0BOT> if you want<@U0BOT>', 'You can sit here if you want'],
  ['<@U0BOT> You can sit here if you want<@U0BOT> ', 'You can sit here if you want'],
  ['<@U0BOT>You can sit here if you want <@U0BOT>', 'You can sit here if you want'],
  ['You can sit here<@U0BOT>if you want', 'You can sit here if you want'],
  ['Hey <@U0BOT>, you can sit here if you want<@U0BOT>!', 'Hey, you can sit here if you want !'],
  ['Hey<@U0BOT> , you can sit here if you want <@U0BOT>!', 'Hey, you can sit here if you want!'],
  ['convert garbled url to <http://vicdb-f.net|vicdb-f.net>', 'convert garbled url to vicdb-f.net'],
  ['convert multiple garbled url to <http://vicdb-f.net|vicdb-f.net>. Also <http://eemdb-p.net|eemdb-p.net>', 'convert multiple garbled url to vicdb-f.net. Also eemdb-p.net'],
  // The same passes for a mention written with the display name.
  ['here<@U0BOT|switchboard>if', 'here if'],
];

for (const [input, expected] of MENTION_CLEANUP) {
  test(`slack parse: cleanText(${JSON.stringify(input)}) is ${JSON.stringify(expected)}, as Rasa`, (t) => {
    t.is(cleanText(input, ['U0BOT']), expected);
  });
}

runChannelCases(test, {
  channel: SlackInput,
  credentials: { slack_token: TOKEN, slack_signing_secret: SECRET },
  cases: [
    {
      label: 'slack: a mention between two words reaches the bot as a space (Rasa: `here<@U…>if` → `here if`)',
      body: eventCallback({ ...MENTION, text: 'can I sit here<@U0BOT>if I want?' }, 'Ev7SPACE'),
      sign,
      status: 200,
      answers: [],
      received: [{ text: 'can I sit here if I want?' }],
    },
  ],
});

test('slack parse: cleanText strips only the bot mentions and restores links', (t) => {
  t.is(cleanText('<@U0BOT> hi <@U0BOT|sb>', ['U0BOT']), 'hi');
  t.is(cleanText('ask <@UOTHER> about <mailto:a@b.c|a@b.c> and <https://x.io>', ['U0BOT']), 'ask <@UOTHER> about a@b.c and https://x.io');
  t.is(cleanText('line one\nline &lt;two&gt;', []), 'line one\nline <two>');
  t.is(cleanText('two  spaces stay', ['U0BOT']), 'two  spaces stay', 'only a mention\u2019s own space is touched, as Rasa');
});

test('slack credentials: the signing secret is required unless allow_unverified, the token always', (t) => {
  t.regex(t.throws(() => SlackInput.fromCredentials({ slack_token: TOKEN }))?.message ?? '', /slack_signing_secret/);
  t.regex(t.throws(() => SlackInput.fromCredentials({ slack_signing_secret: SECRET }))?.message ?? '', /missing "slack_token"/);
  t.regex(
    t.throws(() => SlackInput.fromCredentials({ slack_token: TOKEN, slack_signing_secret: SECRET, conversation_granularity: 'team' }))?.message ?? '',
    /conversation_granularity/,
  );
  const channel = SlackInput.fromCredentials({ slack_token: TOKEN, slack_signing_secret: SECRET });
  t.like(channel.credentials, { use_threads: false, errors_ignore_retry: ['http_timeout'], conversation_granularity: 'sender', api_url: 'https://slack.com/api' });
});

// ---------------------------------------------------------------------------------------------------------------------
// One message, one answer (issue 14, item 6), through a real server: a mention in `slack_channel` arrives as both a
// `message` and an `app_mention` event (two event_ids, one channel and ts); a retry is dropped only when its message
// was seen.

/** Only local connections for this test (the host under test); nock's interceptors are cleared after it. */
function offline(t: ExecutionContext): void {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => nock.cleanAll());
}

/** Posts a signed Events API body, with extra headers (Slack's retry headers). */
async function deliver(request: Awaited<ReturnType<typeof startServer>>['request'], body: object, headers: Record<string, string> = {}) {
  const raw = JSON.stringify(body);
  return request('/webhooks/slack/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...sign(raw), ...headers }, body: raw });
}

/** Records every chat.postMessage body; answers ok. */
function slackApi(): unknown[] {
  const bodies: unknown[] = [];
  nock('https://slack.com')
    .post('/api/chat.postMessage')
    .times(10)
    .reply(200, (_uri, body) => (bodies.push(body), { ok: true, ts: '1.2' }), { 'content-type': 'application/json' });
  return bodies;
}

async function settle(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** A mention in a channel the bot listens in, as Slack sends it twice: shapes from the Events API docs. */
const LISTENED = { channel: 'C0LISTEN', user: 'U061F7AUR', text: '<@U0BOT> is the build green?', ts: '1515449600.000100', client_msg_id: 'f6d6c1b4-0d3c-4b6e-9a41-2c0b1d7e5a10', team: 'T123ABC456' };
const asMessage = eventCallback({ type: 'message', ...LISTENED, event_ts: LISTENED.ts, channel_type: 'channel' }, 'Ev8MSG');
const asMention = eventCallback({ type: 'app_mention', ...LISTENED, event_ts: LISTENED.ts }, 'Ev8MENTION');

for (const [label, order] of [['message first', [asMessage, asMention]], ['app_mention first', [asMention, asMessage]]] as const) {
  test.serial(`slack: a mention in slack_channel delivered as message and app_mention is answered once (${label})`, async (t) => {
    offline(t);
    const channel = SlackInput.fromCredentials({ slack_token: TOKEN, slack_signing_secret: SECRET, slack_channel: 'C0LISTEN' });
    const bot = new ScriptedBot([{ text: 'green' }]);
    const { request } = await startServer(t, [channel], { bot });
    const posted = slackApi();
    const first = await deliver(request, order[0]);
    const second = await deliver(request, order[1]);
    t.is(first.status, 200);
    t.is(second.status, 200);
    t.is(first.headers.get('x-slack-no-retry'), null);
    t.is(second.headers.get('x-slack-no-retry'), '1', 'the second event is the same message: acknowledged, not processed');
    await bot.waitFor(1);
    await settle(() => posted.length >= 1);
    t.is(bot.received.length, 1);
    t.like(bot.received[0], { text: 'is the build green?', messageId: 'C0LISTEN:1515449600.000100' });
    t.deepEqual(posted, [{ channel: 'C0LISTEN', text: 'green' }]);
  });
}

test.serial('slack: an http_timeout retry of a message already received is dropped; the message is answered once', async (t) => {
  offline(t);
  const channel = SlackInput.fromCredentials({ slack_token: TOKEN, slack_signing_secret: SECRET });
  const bot = new ScriptedBot([{ text: 'once' }]);
  const { request, logs } = await startServer(t, [channel], { bot });
  const posted = slackApi();
  const body = dm('Ev9FIRST');
  t.is((await deliver(request, body)).status, 200);
  const retry = await deliver(request, body, { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' });
  t.is(retry.status, 200);
  t.is(retry.headers.get('x-slack-no-retry'), '1');
  await bot.waitFor(1);
  await settle(() => posted.length >= 1);
  t.is(bot.received.length, 1);
  t.deepEqual(posted, [{ channel: 'D024BE91L', text: 'once' }]);
  t.regex(logs.text, /slack message already received: not processed again/);
});

test.serial('slack: an http_timeout retry whose first delivery never arrived is answered, and a later retry of it is dropped', async (t) => {
  offline(t);
  const channel = SlackInput.fromCredentials({ slack_token: TOKEN, slack_signing_secret: SECRET });
  const bot = new ScriptedBot([{ text: 'answered' }]);
  const { request, logs } = await startServer(t, [channel], { bot });
  const posted = slackApi();
  const body = dm('Ev9LOST');
  const retry1 = await deliver(request, body, { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' });
  const retry2 = await deliver(request, body, { 'x-slack-retry-num': '2', 'x-slack-retry-reason': 'http_timeout' });
  t.is(retry1.status, 200);
  t.is(retry2.status, 200);
  await bot.waitFor(1);
  await settle(() => posted.length >= 1);
  t.is(bot.received.length, 1);
  t.deepEqual(posted, [{ channel: 'D024BE91L', text: 'answered' }]);
  t.regex(logs.text, /slack retry of a message not seen before: processed/);
});

// Slack's rate limit and a slow Slack (issue 14, item 5).

test.serial('slack: ratelimited without a Retry-After header still waits a second, then the answer is sent once', async (t) => {
  offline(t);
  const calls: Array<{ at: number; body: unknown }> = [];
  nock('https://slack.com')
    .post('/api/chat.postMessage')
    .times(5)
    .reply((_uri, body) => {
      calls.push({ at: Date.now(), body });
      return calls.length === 1 ? [429, { ok: false, error: 'ratelimited' }, { 'content-type': 'application/json' }] : [200, { ok: true, ts: '1.2' }, { 'content-type': 'application/json' }];
    });
  const bot = new ScriptedBot([{ text: 'paced' }]);
  const { request } = await startServer(t, [SlackInput.fromCredentials({ slack_token: TOKEN, slack_signing_secret: SECRET })], { bot });
  t.is((await deliver(request, dm('Ev10RATE'))).status, 200);
  await settle(() => calls.length >= 2);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(calls.map((call) => call.body), [{ channel: 'D024BE91L', text: 'paced' }, { channel: 'D024BE91L', text: 'paced' }]);
  const waited = calls[1]!.at - calls[0]!.at;
  // The test client backs off 5–20 ms on its own.
  t.true(waited >= 950, `waited ${waited} ms`);
});

test.serial('slack: a chat.postMessage whose answer times out is not posted again', async (t) => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => {
    nock.abortPendingRequests();
    nock.cleanAll();
  });
  const bodies: unknown[] = [];
  nock('https://slack.com')
    .post('/api/chat.postMessage')
    .times(5)
    .reply(async (_uri, body) => {
      bodies.push(body);
      if (bodies.length === 1) await new Promise((resolve) => setTimeout(resolve, 600));
      return [200, { ok: true, ts: '1.2' }, { 'content-type': 'application/json' }];
    });
  const bot = new ScriptedBot([{ text: 'just once' }]);
  const { request, logs } = await startServer(t, [SlackInput.fromCredentials({ slack_token: TOKEN, slack_signing_secret: SECRET })], { bot, http: { timeoutMs: 200 } });
  t.is((await deliver(request, dm('Ev10SLOW'))).status, 200);
  await settle(() => logs.text.includes('sending an answer failed'));
  t.regex(logs.text, /timed out after 200 ms/);
  t.deepEqual(bodies, [{ channel: 'D024BE91L', text: 'just once' }]);
});
