import { editInPlace, OutputChannel, textWithButtonsToText, type BotMessage, type Button, type SendOptions, type SentMessage, type StreamingText } from 'switchboard';
import type { WebexApi } from './api.js';

export const ADAPTIVE_CARD = 'application/vnd.microsoft.card.adaptive';

/** A button as an Adaptive Card action: a link opens, anything else submits `{payload}` (see parse.ts). */
function cardAction(button: Button): Record<string, unknown> {
  if (typeof button.url === 'string' && button.url !== '') return { type: 'Action.OpenUrl', title: button.title, url: button.url };
  return { type: 'Action.Submit', title: button.title, data: { payload: button.payload ?? button.title } };
}

/** An Adaptive Card (1.2: what every Webex client renders) with the text and one action per button. */
export function buttonsCard(text: string, buttons: readonly Button[]): Record<string, unknown> {
  return {
    contentType: ADAPTIVE_CARD,
    content: {
      $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
      type: 'AdaptiveCard',
      version: '1.2',
      body: text === '' ? [] : [{ type: 'TextBlock', text, wrap: true }],
      actions: buttons.map(cardAction),
    },
  };
}

/**
 * Answers with `POST {api_url}/messages` (Bearer), into the room the message came from, or the `room` key when set:
 * text `{roomId, text}`, image `{roomId, files: [url]}`, buttons an Adaptive Card whose presses come back as
 * `attachmentActions`; the rest as the base class's text.
 */
export class WebexOutput extends OutputChannel {
  constructor(
    private readonly api: WebexApi,
    /** The `room` key: every answer (but custom JSON) goes there instead of the sender's room. */
    private readonly room: string | undefined,
  ) {
    super();
  }

  override name(): string {
    return 'webexteams';
  }

  private async send(recipientId: string, body: Record<string, unknown>, text = true): Promise<void> {
    const roomId = this.room ?? recipientId;
    await this.create({ roomId, ...body }, roomId, text);
  }

  /** `POST /messages`, the new message reported for later edits and deletes (`text`: it shows editable text). */
  private async create(body: Record<string, unknown>, roomId: string, text: boolean): Promise<string | undefined> {
    const id = await this.api.createMessage(body, roomId);
    if (id !== undefined) this.reportSent({ id, conversation: typeof body.roomId === 'string' ? body.roomId : undefined, text });
    return id;
  }

  /** Webex takes 7,439 bytes of text in one message. */
  override maxTextLength = 7_000;

  /** `PUT /messages/{id}` with the room and the new text (Webex edits text messages only: not files or cards). */
  override async editMessage(recipientId: string, message: SentMessage, text: string): Promise<void> {
    const roomId = message.conversation ?? this.room ?? recipientId;
    await this.api.editMessage(message.id, { roomId, text }, roomId);
  }

  /** `DELETE /messages/{id}`. */
  override async deleteMessage(recipientId: string, message: SentMessage): Promise<void> {
    await this.api.deleteMessage(message.id, message.conversation ?? this.room ?? recipientId);
  }

  async sendTextMessage(recipientId: string, text: string, _options?: SendOptions): Promise<void> {
    await this.send(recipientId, { text });
  }

  /** Webex allows 10 edits of a message: one every 2 s spreads them over a long answer. */
  override streamIntervalMs = 2_000;

  /** A streamed text: `POST /messages` with the first piece, then `PUT /messages/{id}` as it grows (10 edits at most). */
  override streamText(recipientId: string): StreamingText {
    const roomId = this.room ?? recipientId;
    return editInPlace({
      // Webex takes 7,439 bytes of text in one message.
      limit: 7_000,
      maxEdits: 10,
      post: (text) => this.create({ roomId, text }, roomId, true),
      edit: (id, text) => this.api.editMessage(id, { roomId, text }, roomId),
      send: (answer: BotMessage) => this.sendResponse(recipientId, answer),
    });
  }

  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    // Webex downloads the file and shows it inline; one file per message is all it accepts.
    await this.send(recipientId, { files: [image] }, false);
  }

  /** An Adaptive Card; `text` carries the numbered list for clients that cannot show cards (Webex requires one). */
  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options?: SendOptions): Promise<void> {
    if (buttons.length === 0) {
      if (text !== '') await this.sendTextMessage(recipientId, text, options);
      return;
    }
    await this.send(recipientId, { text: textWithButtonsToText(text, buttons), attachments: [buttonsCard(text, buttons)] }, false);
  }

  /**
   * The JSON is the `POST /messages` body (`markdown`, `attachments`, `parentId`, `toPersonEmail`…), sent as it is;
   * `roomId` defaults to the sender's room unless it names a target itself. `room` does not apply, as in Rasa.
   */
  override async sendCustomJson(recipientId: string, json: unknown, options?: SendOptions): Promise<void> {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      await super.sendCustomJson(recipientId, json, options);
      return;
    }
    const body = json as Record<string, unknown>;
    const targeted = ['roomId', 'toPersonId', 'toPersonEmail'].some((key) => typeof body[key] === 'string' && body[key] !== '');
    const target = targeted ? String(body.roomId ?? body.toPersonId ?? body.toPersonEmail) : recipientId;
    await this.create(targeted ? body : { roomId: recipientId, ...body }, target, false);
  }
}
