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
  verificationSecret,
  z,
  type Context,
  type ReplyAddress,
  type OnNewMessage,
  type Router,
} from 'switchboard';
import { WebexApi } from './api.js';
import { WebexOutput } from './output.js';
import { actionToIncoming, messageToIncoming, parseNotification, sameId, type Notification } from './parse.js';
import { checkNotificationTime, verifySignature } from './verify.js';

export { WebexApi } from './api.js';
export { WebexOutput, buttonsCard } from './output.js';
export { parseNotification, messageToIncoming, actionToIncoming, sameId } from './parse.js';
export { checkNotificationTime, verifySignature } from './verify.js';

const credentials = credentialsSchema({
  access_token: secret(z.string().min(1), "the bot's access token (developer.webex.com → My Webex Apps → your bot)"),
  room: z.string().min(1).optional().meta({ description: "answer in this room (space) id instead of the sender's room" }),
  webhook_secret: verificationSecret('the "secret" the webhook was registered with: checks X-Spark-Signature'),
  api_url: z.url({ protocol: /^https?$/ }).default('https://webexapis.com/v1').meta({ description: 'replaces the Webex API base URL (proxies, tests)' }),
  replay_window: z
    .number()
    .int()
    .min(0)
    .default(3600)
    .meta({ description: 'seconds: a notification whose data.created is older is answered 200 and ignored; 0 turns the check off' }),
});

type Credentials = z.output<typeof credentials>;

/** How long a fetched notification's `data.id` is remembered, so a redelivery is not fetched again. */
const FETCH_DEDUP_MS = 15 * 60_000;

/**
 * Webex (Teams) messaging, with Rasa's keys and webhook. A notification carries only ids, so each one is answered
 * 200 at once, and the message is then fetched (`GET /messages/{id}`) and queued in the background, in arrival order
 * per room. The bot's own messages (its id from `GET /people/me`) are dropped. See docs/channels/webexteams.md.
 */
export class WebexTeamsInput extends InputChannel<Credentials> {
  static override credentials = credentials;
  static override description = 'Webex (Teams) bot, through a webhook';
  /** Request bodies up to 64kb: a notification carries ids only; the message itself is fetched from the API. */
  static override bodyLimit = '64kb';

  /** The tail of each room's fetch queue. */
  private readonly rooms = new Map<string, Promise<void>>();
  private apiClient: WebexApi | undefined;

  name(): string {
    return 'webexteams';
  }


  get api(): WebexApi {
    this.apiClient ??= new WebexApi(this.http, { baseUrl: this.credentials.api_url.replace(/\/+$/, ''), accessToken: this.credentials.access_token });
    return this.apiClient;
  }

  output(): WebexOutput {
    return new WebexOutput(this.api, this.credentials.room);
  }

  /** A message sent first goes to this recipient id, as if it had written. */
  override addressFor(recipient: string): ReplyAddress {
    return { roomId: recipient };
  }

  /** Answers go to the address's `roomId` (the room the message came from), or to the `room` key when it is set. */
  override outputChannel(replyTo: ReplyAddress): WebexOutput {
    addressPart(replyTo, 'roomId');
    return this.output();
  }

  /**
   * Runs `task` after the room's earlier ones, so a slow fetch cannot let a later message overtake it. The host's
   * shutdown waits for it: the notification was answered 200, so Webex will not send it again.
   */
  private inRoomOrder(roomId: string, messageId: string, task: () => Promise<void>): void {
    const tail = (this.rooms.get(roomId) ?? Promise.resolve()).then(task).catch((error: unknown) => {
      this.logger.error({ err: error, sender: roomId }, 'webex notification could not be processed');
    });
    this.background(tail, { sender: roomId, messageId });
    this.rooms.set(roomId, tail);
    void tail.then(() => {
      if (this.rooms.get(roomId) === tail) this.rooms.delete(roomId);
    });
  }

  /** Fetches what a notification announces and queues it for the bot; a failed fetch lets a redelivery try again. */
  private async receive(notification: Notification, onNewMessage: OnNewMessage): Promise<void> {
    const log = this.logger.child({ sender: notification.roomId, messageId: notification.id });
    const store = this.context.store;
    const key = `webexteams:fetched:${notification.id}`;
    // A store outage must not lose messages (the pipeline does the same): fetch it, at the risk of a duplicate.
    const fresh = await store.claim(key, FETCH_DEDUP_MS).catch((error: unknown) => {
      log.error({ err: error }, 'dedup store failed; fetching the message anyway');
      return true;
    });
    if (!fresh) {
      log.debug('webex notification already received: not fetched again');
      return;
    }
    try {
      let incoming;
      if (notification.resource === 'messages') {
        // Webex notifies the bot of its own messages too: answering them would loop.
        if (sameId(notification.personId, await this.api.botId())) {
          log.debug("the bot's own message ignored");
          return;
        }
        incoming = messageToIncoming(notification, await this.api.message(notification.id, notification.roomId));
      } else {
        incoming = actionToIncoming(notification, await this.api.attachmentAction(notification.id, notification.roomId));
      }
      await onNewMessage.enqueue(new UserMessage({ ...incoming, replyTo: { roomId: incoming.senderId }, inputChannel: this.name() }));
    } catch (error) {
      await store.release(key).catch(() => undefined);
      throw error;
    }
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    const check = (ctx: Context) => verifySignature(rawBytes(ctx), ctx.headers, this.credentials.webhook_secret);
    router.post('/webhook', requireVerified(check, { skip: this.unverified }), (ctx) => {
      const body = jsonBody(ctx);
      const parsed = parseNotification(body);
      if (parsed.kind === 'invalid') throw new BadRequestError(parsed.reason);
      // Checked only on what would be fetched: other notifications are ignored anyway. A stale one is answered 200 like
      // any ignored notification, so Webex does not count it as a failed delivery.
      const fresh = parsed.kind === 'fetch' ? checkNotificationTime(body, this.credentials.replay_window, Date.now()) : true;
      if (fresh !== true) {
        this.logger.info({ reason: fresh }, 'webex notification ignored: outside the replay window');
      } else if (parsed.kind === 'ignored') {
        this.logger.debug({ reason: parsed.reason }, 'webex notification ignored');
      } else {
        const { notification } = parsed;
        this.inRoomOrder(notification.roomId, notification.id, () => this.receive(notification, onNewMessage));
      }
      ctx.status = 200;
      ctx.body = '';
    });
    return router;
  }
}

export default WebexTeamsInput;
