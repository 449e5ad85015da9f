import {
  BadRequestError,
  InputChannel,
  UserMessage,
  addressPart,
  credentialsSchema,
  jsonBody,
  rawBytes,
  requireVerified,
  secret,
  z,
  type Context,
  type ReplyAddress,
  type OnNewMessage,
  type Router,
  isObject,
  jsonTooDeep,
} from 'switchboard';
import { OpenIdKeys, TokenCache } from './auth.js';
import { BotFrameworkOutput } from './output.js';
import { parseActivity, type ReplyContext } from './parse.js';
import { checkActivityTime, verifyToken } from './verify.js';

export { OpenIdKeys, TokenCache, BOT_FRAMEWORK_SCOPE, type KeySource, type OpenIdKeysOptions } from './auth.js';
export { BotFrameworkOutput, cardAction, elementCard, heroCard, HERO_CARD } from './output.js';
export { parseActivity, activityText, type ReplyContext } from './parse.js';
export { checkActivityTime, verifyToken, BOT_FRAMEWORK_ISSUER, CLOCK_TOLERANCE_S, SIGNING_ALGORITHMS, SERVICE_URL_CLAIM } from './verify.js';

const OPENID_METADATA = 'https://login.botframework.com/v1/.well-known/openidconfiguration';

const credentials = credentialsSchema({
  app_id: z.string().min(1).meta({ description: "the bot's Microsoft App ID (Azure Bot → Configuration): the audience of incoming tokens" }),
  app_password: secret(z.string().min(1), 'a client secret of that app registration (Certificates & secrets)'),
  tenant_id: z.string().min(1).default('botframework.com').meta({ description: 'the tenant outgoing tokens come from: your directory id for a single-tenant bot' }),
  openid_metadata: z.url({ protocol: /^https?$/ }).default(OPENID_METADATA).meta({ description: 'where the keys signing incoming requests are listed (other clouds, tests)' }),
  token_url: z.url({ protocol: /^https?$/ }).optional().meta({ description: 'token endpoint; default https://login.microsoftonline.com/<tenant_id>/oauth2/v2.0/token' }),
  api_url: z.url({ protocol: /^https?$/ }).optional().meta({ description: "replaces each activity's serviceUrl for answers (proxies, tests)" }),
  typing_indicator: z.boolean().default(true).meta({ description: 'send a "typing" activity while a slow bot works' }),
  replay_window: z
    .number()
    .int()
    .min(0)
    .default(3600)
    .meta({ description: "seconds: an activity whose timestamp is older is answered 200 and ignored; 0 turns the check off" }),
});

type Credentials = z.output<typeof credentials>;

/** The parts of an activity the token is checked against, read leniently: a body that is not JSON is a 400 later. */
function activityClaims(raw: Buffer): { serviceUrl?: unknown; channelId?: unknown } | undefined {
  if (jsonTooDeep(raw)) return undefined;
  try {
    const value: unknown = JSON.parse(raw.toString('utf8').replace(/^\uFEFF/, ''));
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Microsoft Bot Framework (Azure Bot Service: Teams, Web Chat, Direct Line, Slack-through-Azure…) with Rasa's keys:
 * each request's Bearer token is checked against Bot Framework's published keys, `message` activities are queued for
 * the bot (deduplicated by activity id) and answered `success` at once; answers are posted to the activity's service
 * URL with a client-credentials token. See docs/channels/botframework.md.
 */
export class BotFrameworkInput extends InputChannel<Credentials> {
  static override credentials = credentials;
  static override description = 'Microsoft Bot Framework (Azure Bot Service, Teams)';
  /** Request bodies up to 256kb: one activity, with its attachments, cards and Teams entities. */
  static override bodyLimit = '256kb';

  private keysClient: OpenIdKeys | undefined;
  private tokenCache: TokenCache | undefined;

  name(): string {
    return 'botframework';
  }


  /** The keys incoming tokens are checked with. */
  get keys(): OpenIdKeys {
    this.keysClient ??= new OpenIdKeys(this.http, this.credentials.openid_metadata);
    return this.keysClient;
  }

  /** The bot's outgoing token, shared by every answer. */
  get tokens(): TokenCache {
    const { tenant_id: tenant, token_url: tokenUrl } = this.credentials;
    this.tokenCache ??= new TokenCache(this.http, {
      tokenUrl: tokenUrl ?? `https://login.microsoftonline.com/${encodeURIComponent(tenant)}/oauth2/v2.0/token`,
      appId: this.credentials.app_id,
      appPassword: this.credentials.app_password,
    });
    return this.tokenCache;
  }

  /** The output answering one activity; public so an integration can answer into a conversation it has seen. */
  output(reply: ReplyContext): BotFrameworkOutput {
    return new BotFrameworkOutput(this.http, this.tokens, reply, { apiUrl: this.credentials.api_url, typingIndicator: this.credentials.typing_indicator });
  }

  /**
   * The reply address of one activity: its serviceUrl, channelId, conversation, the bot's account (`from` of the
   * answers) and the activity id (`replyToId`), as plain JSON (absent fields left out).
   */
  static replyAddress(reply: ReplyContext): ReplyAddress {
    return JSON.parse(JSON.stringify(reply)) as ReplyAddress;
  }

  /** Rebuilds the output for an address made by `replyAddress`; throws on one this channel did not make. */
  override outputChannel(replyTo: ReplyAddress): BotFrameworkOutput {
    const serviceUrl = addressPart(replyTo, 'serviceUrl');
    const { conversation, bot } = replyTo;
    if (!isObject(conversation) || typeof conversation.id !== 'string') throw new TypeError('reply address without "conversation.id"');
    if (bot !== undefined && (!isObject(bot) || typeof bot.id !== 'string')) throw new TypeError('reply address "bot" without an "id"');
    return this.output({
      serviceUrl,
      channelId: addressPart(replyTo, 'channelId', true),
      conversation: conversation as ReplyContext['conversation'],
      bot: bot as ReplyContext['bot'],
      replyToId: addressPart(replyTo, 'replyToId', true),
    });
  }

  private async check(ctx: Context): Promise<true | string> {
    const keys = await this.keys.source();
    // A getter: verifyToken reads the activity only once the token is verified, so an unsigned body is not parsed.
    return verifyToken(ctx.headers, keys, { appId: this.credentials.app_id, get activity() { return activityClaims(rawBytes(ctx)); } });
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    router.post('/webhook', requireVerified((ctx) => this.check(ctx), { skip: this.unverified }), async (ctx) => {
      const activity = jsonBody(ctx);
      const parsed = parseActivity(activity);
      if (parsed.kind === 'invalid') throw new BadRequestError(parsed.reason);
      // A stale activity is answered 200 like any ignored one: an error would be reported back to the channel.
      const fresh = parsed.kind === 'message' ? checkActivityTime(activity, this.credentials.replay_window, Date.now()) : true;
      if (fresh !== true) {
        this.logger.info({ reason: fresh }, 'bot framework activity ignored: outside the replay window');
      } else if (parsed.kind === 'ignored') {
        this.logger.debug({ reason: parsed.reason }, 'bot framework activity ignored');
      } else {
        const { reply, ...message } = parsed.message;
        await onNewMessage.enqueue(new UserMessage({ ...message, replyTo: BotFrameworkInput.replyAddress(reply), inputChannel: this.name() }));
      }
      ctx.type = 'text/plain';
      ctx.body = 'success';
    });
    return router;
  }
}

export default BotFrameworkInput;
