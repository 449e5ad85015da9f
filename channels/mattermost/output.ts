import { editInPlace, OutputChannel, type BotMessage, type Button, type SendOptions, type SentMessage, type StreamingText } from 'switchboard';
import type { MattermostApi } from './api.js';
import { signAction } from './verify.js';

export interface MattermostOutputSettings {
  /** The channel the message came from (`channel_id`): answers go there. Without it, the recipient id is used. */
  channelId: string | undefined;
  /** Where button clicks come back (`webhook_url`); without it buttons are a numbered text list. */
  webhookUrl: string | undefined;
  /** Signs each button's context (`context.sig`), checked when the click comes back. */
  webhookToken: string | undefined;
  typingIndicator: boolean;
  /** The clock buttons are signed with (ms); the channel's, so tests can fix it. */
  now: () => number;
}

/**
 * Answers with `POST {url}/posts` (Bearer) into the channel the message came from: text `{channel_id, message}`,
 * image `props.attachments[{image_url}]`, buttons a message attachment whose actions call `webhook_url` back with
 * `context.action` = the payload (signed once the post exists, see `sendTextWithButtons`); custom JSON is the post
 * body. The rest as the base class's text.
 */
export class MattermostOutput extends OutputChannel {
  constructor(
    private readonly api: MattermostApi,
    private readonly settings: MattermostOutputSettings,
  ) {
    super();
  }

  override name(): string {
    return 'mattermost';
  }

  private target(recipientId: string): string {
    return this.settings.channelId ?? recipientId;
  }

  private async post(recipientId: string, body: Record<string, unknown>, text = true): Promise<void> {
    const channelId = this.target(recipientId);
    await this.create({ channel_id: channelId, ...body }, channelId, text);
  }

  /** `POST /posts`, the new post reported for later edits and deletes (`text`: it shows editable text). */
  private async create(body: Record<string, unknown>, channelId: string, text: boolean): Promise<string | undefined> {
    const id = await this.api.createPost(body, channelId);
    if (id !== undefined) this.reportSent({ id, conversation: channelId, text });
    return id;
  }

  /** Mattermost's default largest post (MaxPostSize). */
  override maxTextLength = 16_383;

  /** `PUT /posts/{id}/patch` with the new message and no props: the post shows the text alone (its buttons go). */
  override async editMessage(recipientId: string, message: SentMessage, text: string): Promise<void> {
    await this.api.patchPost(message.id, { message: text, props: {} }, message.conversation ?? this.target(recipientId));
  }

  /** `DELETE /posts/{id}`. */
  override async deleteMessage(recipientId: string, message: SentMessage): Promise<void> {
    await this.api.deletePost(message.id, message.conversation ?? this.target(recipientId));
  }

  async sendTextMessage(recipientId: string, text: string, _options?: SendOptions): Promise<void> {
    await this.post(recipientId, { message: text });
  }

  /** Two edits a second at most: well inside Mattermost's default rate limit (10 requests a second). */
  override streamIntervalMs = 500;

  /** A streamed text: `POST /posts` with the first piece, then `PUT /posts/{id}/patch` of its message as it grows. */
  override streamText(recipientId: string): StreamingText {
    const channelId = this.target(recipientId);
    return editInPlace({
      // Mattermost's default largest post (MaxPostSize).
      limit: 16_383,
      post: (text) => this.create({ channel_id: channelId, message: text }, channelId, true),
      edit: (id, text) => this.api.patchPost(id, { message: text }, channelId),
      send: (answer: BotMessage) => this.sendResponse(recipientId, answer),
    });
  }

  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    await this.post(recipientId, { message: '', props: { attachments: [{ image_url: image }] } }, false);
  }

  /**
   * One attachment of actions; each calls `webhook_url` with `{action: payload, iat, sig}` as its context. The
   * signature covers the post's id, known only once the post exists: the post is created with unsigned contexts
   * (a click on them is refused), then `PUT /posts/{id}/patch` replaces its props with the signed ones.
   */
  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options?: SendOptions): Promise<void> {
    const { webhookUrl, webhookToken } = this.settings;
    if (buttons.length === 0) {
      if (text !== '') await this.sendTextMessage(recipientId, text, options);
      return;
    }
    if (webhookUrl === undefined) {
      // Without a URL to call back, a button could not do anything.
      await super.sendTextWithButtons(recipientId, text, buttons, options);
      return;
    }
    const channelId = this.target(recipientId);
    // A link button (no payload) cannot be an action: Mattermost actions only call integrations. It becomes a link.
    const links = buttons.filter((b) => b.payload === undefined && typeof b.url === 'string').map((b) => `[${b.title}](${String(b.url)})`);
    const actionButtons = buttons.filter((b) => !(b.payload === undefined && typeof b.url === 'string'));
    const props = (context: (action: string) => Record<string, unknown>) => ({
      attachments: [{ actions: actionButtons.map((button) => ({ name: button.title, integration: { url: webhookUrl, context: context(String(button.payload ?? button.title)) } })) }],
    });
    const message = [text, ...links].filter((line) => line !== '').join('\n');
    if (actionButtons.length === 0) {
      await this.post(recipientId, { message });
      return;
    }
    const postId = await this.create({ channel_id: channelId, message, props: props((action) => ({ action })) }, channelId, true);
    // Without a webhook_token (allow_unverified) clicks are not checked: nothing to sign.
    if (!webhookToken) return;
    if (postId === undefined) throw new Error('POST /posts answered without the new post\'s "id": its buttons cannot be signed');
    const issuedAt = Math.floor(this.settings.now() / 1000);
    const signed = props((action) => ({ action, iat: issuedAt, sig: signAction(webhookToken, { channelId, postId, issuedAt, action }) }));
    await this.api.patchPost(postId, { props: signed }, channelId);
  }

  /** The JSON is the `POST /posts` body, as in Rasa: `channel_id` defaults to the message's channel, `message` to "". */
  override async sendCustomJson(recipientId: string, json: unknown, options?: SendOptions): Promise<void> {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      await super.sendCustomJson(recipientId, json, options);
      return;
    }
    const body = { channel_id: this.target(recipientId), message: '', ...(json as Record<string, unknown>) };
    await this.create(body, String(body.channel_id), typeof body.message === 'string' && body.message !== '');
  }

  override async sendTyping(recipientId: string): Promise<void> {
    if (!this.settings.typingIndicator) return;
    await this.api.typing(this.target(recipientId));
  }
}
