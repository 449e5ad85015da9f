import { randomUUID } from 'node:crypto';
import { OutputChannel, isObject, readOutButtons, spokenText, type BotFailure, type Button, type Logger, type SendOptions } from 'switchboard';

/** An activity the bot sends VoiceAI Connect: `{"type": "message", "text"}`, or an event (`hangup`, `transfer`...). */
export type Activity = Record<string, unknown>;

/**
 * Collects the bot's answers as AudioCodes Bot API activities, for the HTTP response to VoiceAI Connect's
 * `POST .../activities` (webhook mode): texts as `message` activities, `{"custom": {"hangup": true}}` as the `hangup`
 * event, any other custom JSON as an activity of its own (`transfer`, `config`...). Each gets the `id` and
 * `timestamp` the API asks of every activity. Images and attachments cannot be spoken: skipped with a debug log.
 * Once `close()`d (the response has gone), later answers are dropped with a log.
 */
export class AudiocodesOutput extends OutputChannel {
  readonly activities: Activity[] = [];
  failure: BotFailure | undefined;
  private closed = false;

  constructor(
    private readonly logger?: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    super();
  }

  override name(): string {
    return 'audiocodes';
  }

  /** The answers gathered so far, and no more: the response is being sent. */
  close(): Activity[] {
    this.closed = true;
    return this.activities;
  }

  private add(activity: Activity): void {
    if (this.closed) {
      this.logger?.info({ activity: activity.type === 'event' ? activity.name : activity.type }, 'audiocodes: an answer came after the response was sent; dropped');
      return;
    }
    this.activities.push({ id: randomUUID(), timestamp: this.now().toISOString(), ...activity });
  }

  async sendTextMessage(_recipientId: string, text: string, _options?: SendOptions): Promise<void> {
    const said = spokenText(text);
    if (said === '') return;
    this.add({ type: 'message', text: said });
  }

  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options?: SendOptions): Promise<void> {
    await this.sendTextMessage(recipientId, readOutButtons(text, buttons), options);
  }

  override async sendImageUrl(recipientId: string, _image: string): Promise<void> {
    this.logger?.debug({ recipient: recipientId }, 'audiocodes: an image cannot be spoken; skipped');
  }

  override async sendAttachment(recipientId: string, _attachment: unknown): Promise<void> {
    this.logger?.debug({ recipient: recipientId }, 'audiocodes: an attachment cannot be spoken; skipped');
  }

  /** Ends the call: the Bot API's `hangup` event. */
  async hangup(_recipientId: string): Promise<void> {
    this.add({ type: 'event', name: 'hangup' });
  }

  override async sendCustomJson(recipientId: string, json: unknown, _options?: SendOptions): Promise<void> {
    if (!isObject(json)) {
      this.logger?.debug({ recipient: recipientId }, 'audiocodes: a custom answer that is not an object; skipped');
      return;
    }
    if (json.hangup === true && json.type === undefined) {
      await this.hangup(recipientId);
      return;
    }
    // An activity of the Bot API as the bot wrote it (`transfer`, `config`...); its own id and timestamp are kept.
    this.add({ ...json });
  }

  override botFailed(_recipientId: string, failure: BotFailure): void {
    this.failure = failure;
  }
}
