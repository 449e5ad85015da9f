import { OutputChannel, isHangup, isObject, readOutButtons, silentLogger, spokenText, type Button, type Logger } from 'switchboard';
import { GATHER_HOOK } from './parse.js';

/** One jambonz verb, in the documented `{"verb": "<name>", ...properties}` form. */
export type Verb = { verb: string } & Record<string, unknown>;

/** Seconds of silence before the call is hung up, so the last words are heard (Rasa's `DEFAULT_HANGUP_DELAY_SECONDS`). */
export const HANGUP_DELAY_SECONDS = 1;

/** The verb that listens for the caller's next answer: speech or keypad digits, reported on `GATHER_HOOK`. */
export function gatherVerb(): Verb {
  return { verb: 'gather', input: ['speech', 'digits'], minDigits: 1, actionHook: GATHER_HOOK };
}

export function sayVerb(text: string): Verb {
  return { verb: 'say', text };
}

/**
 * Collects the bot's answers to one jambonz message as verbs, for the `ack` that answers it: text is said
 * (`say`), buttons read out, `{"custom": {"hangup": true}}` ends the call (a short pause, then `hangup`); images and
 * attachments cannot be heard and are skipped. Once `close()`d (the ack went out) later answers are dropped.
 */
export class JambonzOutput extends OutputChannel {
  readonly verbs: Verb[] = [];
  /** True once an answer asked to end the call. */
  hangup = false;
  private closed = false;

  constructor(private readonly logger: Logger = silentLogger) {
    super();
  }

  override name(): string {
    return 'jambonz';
  }

  /** The verbs to send, and no more collecting: what arrives later has no ack to go in. */
  close(): Verb[] {
    this.closed = true;
    return this.verbs;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private add(verb: Verb): void {
    if (this.closed) {
      this.logger.info({ verb: verb.verb }, 'jambonz: an answer came after jambonz was answered; dropped');
      return;
    }
    // Nothing after a hangup would be heard.
    if (this.hangup) return;
    this.verbs.push(verb);
  }

  async sendTextMessage(_recipientId: string, text: string): Promise<void> {
    const spoken = spokenText(text);
    if (spoken !== '') this.add(sayVerb(spoken));
  }

  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[]): Promise<void> {
    await this.sendTextMessage(recipientId, readOutButtons(text, buttons));
  }

  override async sendImageUrl(recipientId: string): Promise<void> {
    this.logger.debug({ sender: recipientId }, 'jambonz: an image cannot be heard; skipped');
  }

  override async sendAttachment(recipientId: string): Promise<void> {
    this.logger.debug({ sender: recipientId }, 'jambonz: an attachment cannot be heard; skipped');
  }

  /** `{"hangup": true}` ends the call; a `text` in it is said (Rasa says a custom payload's text); anything else is skipped. */
  override async sendCustomJson(recipientId: string, json: unknown): Promise<void> {
    if (isObject(json) && typeof json.text === 'string') await this.sendTextMessage(recipientId, json.text);
    if (isHangup(json)) {
      this.add({ verb: 'pause', length: HANGUP_DELAY_SECONDS });
      this.add({ verb: 'hangup' });
      if (!this.closed) this.hangup = true;
      return;
    }
    if (!(isObject(json) && typeof json.text === 'string')) this.logger.debug({ sender: recipientId }, 'jambonz: a custom payload without text cannot be heard; skipped');
  }
}
