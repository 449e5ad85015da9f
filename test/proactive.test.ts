/**
 * Sending first (issue 16): `POST /api/v1/conversations/{channel}/{recipient}/messages` sends answers in Rasa's format
 * through a channel's output as if the bot had answered. One data case per channel that can reach a user first; the
 * token is required (401), the API does not exist without one (404), unknown channels are 404, channels that cannot
 * send first are 409, and a message sent first waits for the bot's answer to the same recipient (one queue).
 */
import test, { type ExecutionContext } from 'ava';
import { OutputChannel, Pipeline, SwitchboardServer, UserMessage, type Bot, type BotMessage, type ReplyAddress } from 'switchboard';
import { ScriptedBot, type PlatformRequest } from 'switchboard/testing';
import SocketIOInput from '../channels/socketio/index.js';
import { connect, next, session } from './socketio-client.js';
import { API_TOKEN, apiHost } from './api-host.js';

const TOKEN = API_TOKEN;
const host = (t: ExecutionContext, options: { bot?: Bot; apiToken?: string | undefined } = {}) => apiHost(t, options);

function send(url: string, channel: string, recipient: string, body: unknown, token: string | null = TOKEN): Promise<Response> {
  return fetch(`${url}/api/v1/conversations/${encodeURIComponent(channel)}/${encodeURIComponent(recipient)}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
}

async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const ANSWER: BotMessage = { text: 'Your order 1234 has shipped.' };

/** Per channel: the recipient id it uses as the sender id, and the platform call that must carry the answer. */
const CASES: Array<{ channel: string; recipient: string; path: RegExp; carries: (request: PlatformRequest) => boolean }> = [
  { channel: 'telegram', recipient: '123456789', path: /\/bot1:a\/sendMessage$/, carries: (r) => JSON.parse(r.body).chat_id === '123456789' && JSON.parse(r.body).text === ANSWER.text },
  { channel: 'slack', recipient: 'U024BE7LH', path: /\/chat\.postMessage$/, carries: (r) => JSON.parse(r.body).channel === 'U024BE7LH' && JSON.parse(r.body).text === ANSWER.text },
  { channel: 'facebook', recipient: '1254459154682919', path: /\/me\/messages/, carries: (r) => JSON.parse(r.body).recipient.id === '1254459154682919' && JSON.parse(r.body).message.text === ANSWER.text },
  { channel: 'instagram', recipient: '1254459154682919', path: /\/me\/messages/, carries: (r) => JSON.parse(r.body).recipient.id === '1254459154682919' && JSON.parse(r.body).message.text === ANSWER.text },
  { channel: 'whatsapp', recipient: '16505551234', path: /\/106540352242922\/messages$/, carries: (r) => JSON.parse(r.body).to === '16505551234' && JSON.parse(r.body).text?.body === ANSWER.text },
  { channel: 'twilio', recipient: '+14155550000', path: /\/Messages\.json$/, carries: (r) => new URLSearchParams(r.body).get('To') === '+14155550000' && new URLSearchParams(r.body).get('Body') === ANSWER.text },
  { channel: 'webexteams', recipient: 'Y2lzY29zcGFyazovL3VzL1JPT00vYmJjZWIxYWQ', path: /\/messages$/, carries: (r) => JSON.parse(r.body).roomId === 'Y2lzY29zcGFyazovL3VzL1JPT00vYmJjZWIxYWQ' && JSON.parse(r.body).text === ANSWER.text },
  { channel: 'line', recipient: 'U4af4980629', path: /\/v2\/bot\/message\/push$/, carries: (r) => JSON.parse(r.body).to === 'U4af4980629' && JSON.parse(r.body).messages[0].text === ANSWER.text },
  { channel: 'mattermost', recipient: 'h7ixbydcg7gyjm1ejr3y5ztrqw', path: /\/api\/v4\/posts$/, carries: (r) => JSON.parse(r.body).channel_id === 'h7ixbydcg7gyjm1ejr3y5ztrqw' && JSON.parse(r.body).message === ANSWER.text },
  { channel: 'rocketchat', recipient: 'GENERAL', path: /\/api\/v1\/chat\.postMessage$/, carries: (r) => JSON.parse(r.body).roomId === 'GENERAL' && JSON.parse(r.body).text === ANSWER.text },
  { channel: 'callback', recipient: 'alice', path: /\/callback$/, carries: (r) => JSON.stringify(JSON.parse(r.body)).includes(ANSWER.text!) && JSON.stringify(JSON.parse(r.body)).includes('alice') },
];

for (const item of CASES) {
  test(`sending first on ${item.channel}: 202, then the answer reaches the platform for that recipient`, async (t) => {
    const { url, api } = await host(t);
    const response = await send(url, item.channel, item.recipient, [ANSWER]);
    t.is(response.status, 202);
    const body = (await response.json()) as { ids: string[] };
    t.deepEqual(body, { status: 'accepted', channel: item.channel, recipient: item.recipient, messages: 1, ids: [body.ids[0]!] });
    t.regex(body.ids[0]!, /^m_[A-Za-z0-9_-]{22}$/);
    await until(() => api.requests.some((r) => item.path.test(r.path) && item.carries(r)), `${item.channel} call`);
    t.pass();
  });
}

test('without the token, or with a wrong one: 401 and nothing is sent; without --api-token the API does not exist (404)', async (t) => {
  const { url, api } = await host(t);
  const missing = await send(url, 'telegram', '1', [ANSWER], null);
  t.is(missing.status, 401);
  t.regex(missing.headers.get('www-authenticate') ?? '', /^Bearer/);
  t.is((await send(url, 'telegram', '1', [ANSWER], 'wrong-token-wrong-token-000')).status, 401);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.false(api.requests.some((r) => r.path.endsWith('/sendMessage')));
  const off = await host(t, { apiToken: undefined });
  t.is((await send(off.url, 'telegram', '1', [ANSWER])).status, 404);
});

test('unknown channel 404; a channel that answers only in its own response (rest) 409; Bot Framework without an earlier message 409', async (t) => {
  const { url } = await host(t);
  const unknown = await send(url, 'nosuch', '1', [ANSWER]);
  t.is(unknown.status, 404);
  t.regex(((await unknown.json()) as { error: string }).error, /no channel "nosuch"/);
  const rest = await send(url, 'rest', 'alice', [ANSWER]);
  t.is(rest.status, 409);
  t.regex(((await rest.json()) as { error: string }).error, /rest channel cannot send first/);
  const teams = await send(url, 'botframework', '29:1zPNq1EP2_H', [ANSWER]);
  t.is(teams.status, 409);
  t.regex(((await teams.json()) as { error: string }).error, /needs an earlier message/);
});

test('a body that is not a non-empty array of answer objects is 400', async (t) => {
  const { url } = await host(t);
  for (const body of [{ text: 'not an array' }, [], ['a string'], Array.from({ length: 51 }, () => ANSWER)]) {
    t.is((await send(url, 'telegram', '1', body)).status, 400, JSON.stringify(body).slice(0, 40));
  }
});

test('a message sent first while the bot answers the same recipient waits for that answer: one queue, in order', async (t) => {
  const bot = new ScriptedBot(async () => {
    await new Promise((resolve) => setTimeout(resolve, 400));
    return [{ text: 'the bot answer' }];
  });
  const { url, api, server } = await host(t, { bot });
  const channel = server.channels.find((c) => c.name() === 'telegram')!;
  const update = { update_id: 1, message: { message_id: 1, from: { id: 42, is_bot: false, first_name: 'A' }, chat: { id: 42, type: 'private' }, date: 1441645532, text: 'hi' } };
  t.is((await fetch(`${url}/webhooks/telegram/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': (channel as unknown as { secretToken: string }).secretToken }, body: JSON.stringify(update) })).status, 200);
  await bot.waitForMessages(1);
  t.is((await send(url, 'telegram', '42', [{ text: 'sent first' }])).status, 202);
  const texts = () => api.requests.filter((r) => r.path.endsWith('/sendMessage')).map((r) => (JSON.parse(r.body) as { text: string }).text);
  await until(() => texts().length >= 2, 'both answers');
  t.deepEqual(texts(), ['the bot answer', 'sent first']);
});

test('sending first on socketio: the answer reaches the sockets of that session id', async (t) => {
  const channel = SocketIOInput.fromCredentials({ session_persistence: true });
  const server = new SwitchboardServer({ channels: [channel], bot: new ScriptedBot(), apiToken: TOKEN });
  t.teardown(() => server.close(200));
  const { port } = await server.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  const socket = await connect(t, { url });
  // The client holds `<sender id>.<signature>`; the recipient is the sender id, as the bot sees it.
  const sessionId = await session(socket);
  const senderId = sessionId.slice(0, sessionId.lastIndexOf('.'));
  const uttered = next<BotMessage>(socket, 'bot_uttered');
  t.is((await send(url, 'socketio', senderId, [ANSWER])).status, 202);
  t.deepEqual(await uttered, { text: ANSWER.text });
});

test('a channel without addressFor (Bot Framework, Discord) reaches a user who wrote before: the address of their last message', async (t) => {
  const sent: Array<{ to: unknown; text: unknown }> = [];
  class Output extends OutputChannel {
    constructor(private readonly address: ReplyAddress) {
      super();
    }
    async sendTextMessage(_recipient: string, text: string): Promise<void> {
      sent.push({ to: this.address.conversation, text });
    }
  }
  const source = { outputChannel: (replyTo: ReplyAddress) => new Output(replyTo) };
  const pipeline = new Pipeline({ bot: new ScriptedBot([]) });
  t.is(await pipeline.addressOf('teams', source, 'u1'), undefined, 'nobody wrote yet');
  await (await pipeline.enqueue(new UserMessage({ text: 'hi', senderId: 'u1', replyTo: { conversation: 'a:1' }, inputChannel: 'teams' }), undefined, {}, source)).done;
  await (await pipeline.enqueue(new UserMessage({ text: 'again', senderId: 'u1', replyTo: { conversation: 'a:2' }, inputChannel: 'teams' }), undefined, {}, source)).done;
  const address = await pipeline.addressOf('teams', source, 'u1');
  t.deepEqual(address, { conversation: 'a:2' }, 'the last one');
  await (await pipeline.enqueueAnswers(new UserMessage({ senderId: 'u1', replyTo: address!, inputChannel: 'teams' }), [{ text: 'hello first' }], source)).done;
  t.deepEqual(sent, [{ to: 'a:2', text: 'hello first' }]);
});
