import { randomUUID } from 'node:crypto';
import { OutputChannel, paragraphs, type BotMessage, type Button, type Element, type StreamingText } from 'switchboard';

/** Where the output emits: a socket.io namespace (or anything with `to(room).emit(event, data)`). */
export interface RoomEmitter {
  to(room: string): { emit(event: string, ...args: unknown[]): unknown };
}

/** A quick reply as Rasa's socket.io channel (and Messenger) shapes it. */
export interface SocketQuickReply {
  content_type: 'text';
  title: string;
  payload: string;
}

/**
 * Sends each answer as one `bot_message_evt` event to the sender's room (the socket id, or the session id with
 * `session_persistence`), in the shapes Rasa's SocketIOOutput emits, so existing widgets (rasa-webchat) render them.
 */
export class SocketIOOutput extends OutputChannel {
  constructor(
    private readonly emitter: RoomEmitter,
    readonly botMessageEvt: string,
  ) {
    super();
  }

  override name(): string {
    return 'socketio';
  }

  protected emit(room: string, message: unknown): void {
    this.emitter.to(room).emit(this.botMessageEvt, message);
  }

  /** Partial texts go out as they grow: a client can show each one at once. */
  override streamIntervalMs = 0;

  /**
   * A streamed text: `<bot_message_evt>_partial` events `{id, text}` (`bot_uttered_partial` by default) with the text
   * so far while it grows, then the whole answer as the usual `bot_message_evt` events. A client that does not know
   * the partial event (rasa-webchat) ignores it and shows the answer once.
   */
  override streamText(recipientId: string): StreamingText {
    const id = randomUUID();
    return {
      update: async (text: string) => {
        this.emitter.to(recipientId).emit(`${this.botMessageEvt}_partial`, { id, text });
      },
      end: (answer: BotMessage) => this.sendResponse(recipientId, answer),
    };
  }

  /** `{text}`. The host has already split the text at blank lines. */
  async sendTextMessage(recipientId: string, text: string): Promise<void> {
    this.emit(recipientId, { text });
  }

  /** `{attachment:{type:"image", payload:{src}}}`. */
  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    this.emit(recipientId, { attachment: { type: 'image', payload: { src: image } } });
  }

  /** `{attachment}`, the attachment as the bot gave it. */
  override async sendAttachment(recipientId: string, attachment: unknown): Promise<void> {
    this.emit(recipientId, { attachment });
  }

  /**
   * As Rasa: one `{text, quick_replies}` event per paragraph of the text (`paragraphs`), every part with a
   * `quick_replies` list, the buttons all on the last part (`payload` defaults to the title).
   */
  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[]): Promise<void> {
    const parts = paragraphs(text);
    const messages: Array<{ text: string; quick_replies: SocketQuickReply[] }> = (parts.length > 0 ? parts : ['']).map((part) => ({ text: part, quick_replies: [] }));
    messages[messages.length - 1]!.quick_replies = buttons.map((button) => ({
      content_type: 'text',
      title: String(button.title),
      payload: typeof button.payload === 'string' ? button.payload : String(button.title),
    }));
    for (const message of messages) this.emit(recipientId, message);
  }

  /** One event per element: `{attachment:{type:"template", payload:{template_type:"generic", elements: <element>}}}`. */
  override async sendElements(recipientId: string, elements: Element[]): Promise<void> {
    for (const element of elements) {
      this.emit(recipientId, { attachment: { type: 'template', payload: { template_type: 'generic', elements: element } } });
    }
  }

  /**
   * As Rasa (`sio.emit(bot_message_evt, **custom)`): a custom object's `data` is what is sent, to its `room` if it
   * names one; without `data` (where Rasa fails), the whole object is sent to the sender.
   */
  override async sendCustomJson(recipientId: string, json: unknown): Promise<void> {
    if (json !== null && typeof json === 'object' && !Array.isArray(json) && 'data' in json) {
      const { data, room } = json as { data: unknown; room?: unknown };
      this.emit(typeof room === 'string' && room !== '' ? room : recipientId, data);
      return;
    }
    this.emit(recipientId, json);
  }
}
