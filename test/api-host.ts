/**
 * The host the conversations API tests run against (test/proactive.test.ts, test/edits.test.ts): every channel that
 * can send first, configured against one fake platform, and the API enabled with `API_TOKEN`.
 */
import type { ExecutionContext } from 'ava';
import { loadChannels } from '#src/loader.js';
import { parseCredentialsText } from '#src/credentials.js';
import { SwitchboardServer, type Bot, type Store } from 'switchboard';
import { startFakePlatform, ScriptedBot, type FakePlatform, type PlatformRequest } from 'switchboard/testing';

export const API_TOKEN = 'conversations-api-token-0123456789';

export type PlatformAnswer = { status?: number; body?: unknown } | undefined;

/** What the fake platform answers when a test's own `answer` does not: logins, tokens, ids of sent messages. */
function common(request: PlatformRequest): PlatformAnswer {
  if (request.path === '/token') return { body: { token_type: 'Bearer', expires_in: 3600, access_token: 'bf-access-token' } };
  if (request.path.endsWith('/api/v1/login')) return { body: { status: 'success', data: { authToken: 'rc-session-token', userId: 'botuserid' } } };
  if (request.path.endsWith('/users/me')) return { body: { id: 'botuserid' } };
  if (request.path.endsWith('/sendMessage')) return { body: { ok: true, result: { message_id: 1 } } };
  if (request.path.includes('/Messages.json')) return { status: 201, body: { sid: 'SM1' } };
  return undefined;
}

export interface ApiHostOptions {
  /** The platform's answer to a request, before the common ones. */
  answer?: (request: PlatformRequest) => PlatformAnswer;
  /** Default: a ScriptedBot answering "ok". */
  bot?: Bot;
  store?: Store;
  /** A fake platform shared with another host (two instances); else one of its own. */
  api?: FakePlatform;
  /** Default `API_TOKEN`; `undefined`: the API is off. */
  apiToken?: string | undefined;
}

export async function apiHost(t: ExecutionContext, options: ApiHostOptions = {}): Promise<{ url: string; api: FakePlatform; server: SwitchboardServer }> {
  const api = options.api ?? await startFakePlatform((request) => options.answer?.(request) ?? common(request));
  if (!options.api) t.teardown(() => api.close());
  const yaml = `
telegram: {access_token: "1:a", verify: bot, webhook_url: "https://x.example/w", allow_unverified: true, api_url: "${api.url}"}
slack: {slack_token: xoxb-1, allow_unverified: true, api_url: "${api.url}"}
facebook: {verify: v, page-access-token: p, allow_unverified: true, api_url: "${api.url}"}
instagram: {verify: v, page-access-token: p, instagram_account_id: "17841405822304914", allow_unverified: true, api_url: "${api.url}"}
whatsapp: {phone_number_id: "106540352242922", access_token: t, verify_token: v, allow_unverified: true, api_url: "${api.url}"}
twilio: {account_sid: AC00000000000000000000000000000000, auth_token: t, twilio_number: "+15005550006", allow_unverified: true, api_url: "${api.url}"}
webexteams: {access_token: t, allow_unverified: true, api_url: "${api.url}"}
line: {channel_access_token: t, allow_unverified: true, api_url: "${api.url}"}
callback: {url: "${api.url}/callback"}
botframework: {app_id: a, app_password: p, allow_unverified: true, api_url: "${api.url}", token_url: "${api.url}/token", openid_metadata: "${api.url}/openid"}
mattermost: {url: "${api.url}/api/v4", token: t, webhook_url: "https://x.example/w", allow_unverified: true}
rocketchat: {user: bot, password: p, server_url: "${api.url}", allow_unverified: true}
rest:
`;
  const channels = await loadChannels(parseCredentialsText(yaml, 'api.yml', {}), []);
  const apiToken = 'apiToken' in options ? options.apiToken : API_TOKEN;
  const server = new SwitchboardServer({ channels, bot: options.bot ?? new ScriptedBot(), ...(apiToken === undefined ? {} : { apiToken }), ...(options.store ? { store: options.store } : {}) });
  t.teardown(() => server.close(500));
  const { port } = await server.listen(0, '127.0.0.1');
  return { url: `http://127.0.0.1:${port}`, api, server };
}
