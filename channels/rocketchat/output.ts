import { OutputChannel, type Button, type Element, type SendOptions, type SentMessage } from 'switchboard';
import type { RocketChatApi } from './api.js';

/** A button as a Rocket.Chat message action: a link opens, anything else posts its payload as the user. */
export function buttonAction(button: Button): Record<string, unknown> {
  if (button.payload === undefined && typeof button.url === 'string') return { type: 'button', text: button.title, url: button.url };
  return { type: 'button', text: button.title, msg: String(button.payload ?? button.title), msg_in_chat_window: true };
}

/** A carousel card as a Rocket.Chat attachment. */
export function elementAttachment(element: Element): Record<string, unknown> {
  const attachment: Record<string, unknown> = { title: element.title };
  if (element.subtitle) attachment.text = element.subtitle;
  if (element.image_url) attachment.image_url = element.image_url;
  if (element.buttons && element.buttons.length > 0) attachment.actions = element.buttons.map(buttonAction);
  return attachment;
}

/**
 * Answers with `POST /api/v1/chat.postMessage` into the room the message came from: text `{roomId, text}`, image
 * `{roomId, attachments: [{image_url, collapsed: false}]}`, buttons attachment actions whose click posts the payload
 * in the room, elements one attachment each, an attachment object as it is; custom JSON is the body.
 */
export class RocketChatOutput extends OutputChannel {
  constructor(private readonly api: RocketChatApi) {
    super();
  }

  override name(): string {
    return 'rocketchat';
  }

  private async send(roomId: string, body: Record<string, unknown>, text = true): Promise<void> {
    await this.postMessage({ roomId, ...body }, roomId, text);
  }

  /** `chat.postMessage`, the new message reported for later edits and deletes (`text`: it shows editable text). */
  private async postMessage(body: Record<string, unknown>, recipient: string, text: boolean): Promise<void> {
    const posted = await this.api.postMessage(body, recipient);
    if (posted) this.reportSent({ id: posted.id, conversation: posted.roomId, text });
  }

  /** Rocket.Chat's default largest message (Message_MaxAllowedSize). */
  override maxTextLength = 5_000;

  /** `chat.update` of the message's text (Rocket.Chat keeps its attachments). */
  override async editMessage(recipientId: string, message: SentMessage, text: string): Promise<void> {
    await this.api.updateMessage(message.conversation ?? recipientId, message.id, text);
  }

  /** `chat.delete`. */
  override async deleteMessage(recipientId: string, message: SentMessage): Promise<void> {
    await this.api.deleteMessage(message.conversation ?? recipientId, message.id);
  }

  async sendTextMessage(recipientId: string, text: string, _options?: SendOptions): Promise<void> {
    await this.send(recipientId, { text });
  }

  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    await this.send(recipientId, { attachments: [{ image_url: image, collapsed: false }] }, false);
  }

  override async sendAttachment(recipientId: string, attachment: unknown, options?: SendOptions): Promise<void> {
    // Rocket.Chat attachments are objects (`title`, `text`, `image_url`, `title_link`…); anything else is text.
    if (attachment === null || typeof attachment !== 'object' || Array.isArray(attachment)) return super.sendAttachment(recipientId, attachment, options);
    await this.send(recipientId, { attachments: [attachment] }, false);
  }

  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options?: SendOptions): Promise<void> {
    if (buttons.length === 0) {
      if (text !== '') await this.sendTextMessage(recipientId, text, options);
      return;
    }
    await this.send(recipientId, { text, attachments: [{ actions: buttons.map(buttonAction) }] });
  }

  override async sendElements(recipientId: string, elements: Element[]): Promise<void> {
    await this.send(recipientId, { attachments: elements.map(elementAttachment) }, false);
  }

  /**
   * The JSON is the `chat.postMessage` body, as in Rasa, sent as it is: into the sender's room unless it names a
   * `channel` or `roomId` itself. Rasa requires `text`; here a body without it is sent too (attachments only).
   */
  override async sendCustomJson(recipientId: string, json: unknown, options?: SendOptions): Promise<void> {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) return super.sendCustomJson(recipientId, json, options);
    const body = json as Record<string, unknown>;
    const targeted = (typeof body.channel === 'string' && body.channel !== '') || (typeof body.roomId === 'string' && body.roomId !== '');
    await this.postMessage(targeted ? body : { roomId: recipientId, ...body }, String(body.roomId ?? body.channel ?? recipientId), typeof body.text === 'string' && body.text !== '');
  }
}
