import { OutputChannel, type Button, type SendOptions } from 'switchboard';
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
}

/**
 * Answers with `POST {url}/posts` (Bearer) into the channel the message came from: text `{channel_id, message}`,
 * image `props.attachments[{image_url}]`, buttons a message attachment whose actions call `webhook_url` back with
 * `context.action` = the payload; custom JSON is the post body. The rest as the base class's text.
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

  private async post(recipientId: string, body: Record<string, unknown>): Promise<void> {
    const channelId = this.target(recipientId);
    await this.api.createPost({ channel_id: channelId, ...body }, channelId);
  }

  async sendTextMessage(recipientId: string, text: string, _options?: SendOptions): Promise<void> {
    await this.post(recipientId, { message: text });
  }

  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    await this.post(recipientId, { message: '', props: { attachments: [{ image_url: image }] } });
  }

  /** One attachment of actions; each calls `webhook_url` with `{action: payload, sig}` as its context. */
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
    const actions = buttons
      .filter((b) => !(b.payload === undefined && typeof b.url === 'string'))
      .map((button) => {
        const action = String(button.payload ?? button.title);
        const context: Record<string, string> = { action };
        if (webhookToken) context.sig = signAction(webhookToken, channelId, action);
        return { name: button.title, integration: { url: webhookUrl, context } };
      });
    const message = [text, ...links].filter((line) => line !== '').join('\n');
    await this.post(recipientId, actions.length > 0 ? { message, props: { attachments: [{ actions }] } } : { message });
  }

  /** The JSON is the `POST /posts` body, as in Rasa: `channel_id` defaults to the message's channel, `message` to "". */
  override async sendCustomJson(recipientId: string, json: unknown, options?: SendOptions): Promise<void> {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      await super.sendCustomJson(recipientId, json, options);
      return;
    }
    const body = { channel_id: this.target(recipientId), message: '', ...(json as Record<string, unknown>) };
    await this.api.createPost(body, String(body.channel_id));
  }

  override async sendTyping(recipientId: string): Promise<void> {
    if (!this.settings.typingIndicator) return;
    await this.api.typing(this.target(recipientId));
  }
}
