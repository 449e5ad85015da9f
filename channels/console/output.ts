import { OutputChannel, buttonToText, type BotMessage, type Button, type Element } from 'switchboard';

/** Text lines start with this; the continuation lines of a multi-line text are indented to match. */
export const BOT_PREFIX = 'Bot: ';

/**
 * Prints the bot's answers on a terminal (or any writable stream), one line per item:
 *
 * ```
 * Bot: Hey! How are you?        text (continuation lines indented under the text)
 * 1: great (/mood_great)        buttons and quick replies, numbered across one answer
 * Image: https://…/cat.jpg      image
 * Card: Title : subtitle        each card of a carousel, then its buttons (numbering continues)
 * Attachment: {…}               attachment, as JSON unless it is a string
 * Custom: {…}                   custom JSON
 * ```
 *
 * The buttons of the last answer that had any are remembered in `buttons`: the console channel turns a number typed
 * by the user into that button's payload.
 */
export class ConsoleOutput extends OutputChannel {
  /** The buttons of the last answer that had buttons (or quick replies, or buttons on its cards). */
  buttons: Button[] = [];
  /** The buttons of the answer being printed; numbering continues across its text buttons and card buttons. */
  private pending: Button[] | undefined;

  constructor(private readonly stream: NodeJS.WritableStream) {
    super();
  }

  override name(): string {
    return 'console';
  }

  /** Writes lines and waits until the stream took them, so the output stays in order and is flushed on exit. */
  write(lines: string[]): Promise<void> {
    if (lines.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.stream.write(`${lines.join('\n')}\n`, (error?: Error | null) => (error ? reject(error) : resolve()));
    });
  }

  private textLines(text: string): string[] {
    if (text.trim() === '') return [];
    const [first = '', ...rest] = text.split(/\r?\n/);
    return [`${BOT_PREFIX}${first}`, ...rest.map((line) => (line === '' ? '' : `${' '.repeat(BOT_PREFIX.length)}${line}`))];
  }

  /** Numbers the buttons after those already shown in this answer, and remembers them for a pick by number. */
  private buttonLines(buttons: readonly Button[]): string[] {
    const shown = this.pending ?? [];
    const offset = shown.length;
    shown.push(...buttons);
    if (this.pending === undefined) this.buttons = shown;
    return buttons.map((button, index) => buttonToText(button, offset + index));
  }

  override async sendResponse(recipientId: string, message: BotMessage): Promise<void> {
    this.pending = [];
    try {
      await super.sendResponse(recipientId, message);
    } finally {
      if (this.pending.length > 0) this.buttons = this.pending;
      this.pending = undefined;
    }
  }

  async sendTextMessage(_recipientId: string, text: string): Promise<void> {
    await this.write(this.textLines(text));
  }

  override async sendTextWithButtons(_recipientId: string, text: string, buttons: Button[]): Promise<void> {
    await this.write([...this.textLines(text), ...this.buttonLines(buttons)]);
  }

  override async sendImageUrl(_recipientId: string, image: string): Promise<void> {
    await this.write([`Image: ${image}`]);
  }

  override async sendAttachment(_recipientId: string, attachment: unknown): Promise<void> {
    await this.write([`Attachment: ${typeof attachment === 'string' ? attachment : JSON.stringify(attachment)}`]);
  }

  override async sendCustomJson(_recipientId: string, json: unknown): Promise<void> {
    await this.write([`Custom: ${JSON.stringify(json)}`]);
  }

  override async sendElements(_recipientId: string, elements: Element[]): Promise<void> {
    const lines: string[] = [];
    for (const element of elements) {
      lines.push(`Card: ${element.subtitle ? `${element.title} : ${element.subtitle}` : element.title}`);
      if (typeof element.image_url === 'string' && element.image_url !== '') lines.push(`Image: ${element.image_url}`);
      lines.push(...this.buttonLines(element.buttons ?? []));
    }
    await this.write(lines);
  }
}
