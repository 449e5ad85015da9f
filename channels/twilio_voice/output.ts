import { CollectingOutputChannel, isHangup, paragraphs, spokenText, type BotFailure, type Button, type CollectedMessage, type Logger } from 'switchboard';

/** How a `<Gather>` listens (Twilio's attribute names), from the channel's credentials. */
export interface GatherSettings {
  /** The `<Gather action>` URL, without the reprompt. */
  action: string;
  /** `assistant_voice`: `<Say voice>`. */
  voice: string;
  speechTimeout: string;
  speechModel: string;
  enhanced: 'true' | 'false';
}

/** The query parameter of the `<Gather action>` that carries what to say again when the caller is silent. */
export const REPROMPT_PARAM = 'reprompt';

/** The longest text kept in the action URL to be said again; a longer one is replaced by `reprompt_fallback_phrase`. */
export const MAX_REPROMPT = 1000;

/** Buttons read out: the text, a full stop if it has no closing punctuation, then "Choose one of: a, b, c." */
export function buttonsSpoken(text: string, buttons: readonly Button[]): string {
  const titles = buttons.map((button) => spokenText(String(button.title ?? ''))).filter((title) => title !== '');
  const spoken = spokenText(text);
  if (titles.length === 0) return spoken;
  const lead = spoken === '' ? '' : /[.!?:]$/.test(spoken) ? `${spoken} ` : `${spoken}. `;
  return `${lead}Choose one of: ${titles.join(', ')}.`;
}

/**
 * Collects what the bot says for the webhook's TwiML: texts as they will be spoken (emoji removed, buttons read
 * out), and the hang-up. Images, attachments and other custom payloads cannot be heard: skipped, with a debug log.
 * A bot failure (it threw, or passed `--bot-timeout`) is noted; the host's apology arrives as a text before it.
 */
export class TwilioVoiceOutput extends CollectingOutputChannel {
  failure: BotFailure | undefined;

  constructor(private readonly logger: Logger) {
    super();
  }

  override name(): string {
    return 'twilio_voice';
  }

  override async sendTextMessage(recipientId: string, text: string): Promise<void> {
    for (const part of paragraphs(text)) {
      const spoken = spokenText(part);
      if (spoken !== part.trim()) this.logger.debug({ sender: recipientId }, 'emoji removed from a spoken answer');
      if (spoken !== '') this.collect({ recipient_id: recipientId, text: spoken });
    }
  }

  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[]): Promise<void> {
    const spoken = buttonsSpoken(text, buttons);
    if (spoken !== '') this.collect({ recipient_id: recipientId, text: spoken });
  }

  override async sendImageUrl(recipientId: string): Promise<void> {
    this.logger.debug({ sender: recipientId }, 'an image cannot be said on a call: skipped (give voice answers a text alternative)');
  }

  override async sendAttachment(recipientId: string): Promise<void> {
    this.logger.debug({ sender: recipientId }, 'an attachment cannot be said on a call: skipped');
  }

  override async sendCustomJson(recipientId: string, json: unknown): Promise<void> {
    if (isHangup(json)) {
      this.collect({ recipient_id: recipientId, custom: { hangup: true } });
      return;
    }
    this.logger.debug({ sender: recipientId }, 'a custom payload other than {"hangup": true} cannot be said on a call: skipped');
  }

  override botFailed(_recipientId: string, failure: BotFailure): void {
    this.failure = failure;
  }
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

/** Characters XML 1.0 forbids (control characters): dropped, a TwiML parser would refuse the document. */
// eslint-disable-next-line no-control-regex
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

/** Text safe inside an element. */
export function xmlText(text: string): string {
  return text.replace(NOT_XML, '').replace(/[&<>]/g, (c) => XML_ESCAPES[c]!);
}

/** A value safe inside a double-quoted attribute. */
export function xmlAttribute(value: string): string {
  return value.replace(NOT_XML, '').replace(/[&<>"]/g, (c) => XML_ESCAPES[c]!);
}

/** The `<Gather action>` URL that says `text` again when the caller is silent. */
export function actionUrl(action: string, text: string): string {
  const kept = text.length <= MAX_REPROMPT ? text : '';
  return `${action}${action.includes('?') ? '&' : '?'}${REPROMPT_PARAM}=${encodeURIComponent(kept)}`;
}

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

/** TwiML that says nothing more: the call ends (a status callback's answer). */
export const EMPTY_TWIML = `${XML_DECLARATION}<Response/>`;

/**
 * The webhook's answer, as Rasa's channel builds it: each text but the last said with `<Say voice>` and a one-second
 * `<Pause>`, the last inside `<Gather input="speech" action=… actionOnEmptyResult="true">` so the caller's answer (or
 * silence) comes back to the webhook; a hang-up answer says what came before it, then `<Hangup/>`, and nothing after
 * it. When the bot said nothing the `<Gather>` still listens: Rasa's empty `<Response/>` hangs up on the caller.
 */
export function voiceResponse(messages: readonly CollectedMessage[], settings: GatherSettings): string {
  const say = (text: string) => `<Say voice="${xmlAttribute(settings.voice)}">${xmlText(text)}</Say>`;
  const texts: string[] = [];
  let hangup = false;
  for (const message of messages) {
    if (isHangup(message.custom)) {
      hangup = true;
      break;
    }
    if (typeof message.text === 'string' && message.text !== '') texts.push(message.text);
  }
  if (hangup) return `${XML_DECLARATION}<Response>${texts.map((text) => `${say(text)}<Pause length="1"/>`).join('')}<Hangup/></Response>`;
  const last = texts.pop();
  const before = texts.map((text) => `${say(text)}<Pause length="1"/>`).join('');
  const gather =
    `<Gather action="${xmlAttribute(actionUrl(settings.action, last ?? ''))}" actionOnEmptyResult="true" enhanced="${settings.enhanced}" ` +
    `input="speech" speechModel="${xmlAttribute(settings.speechModel)}" speechTimeout="${xmlAttribute(settings.speechTimeout)}">`;
  return `${XML_DECLARATION}<Response>${before}${gather}${last === undefined ? '' : say(last)}</Gather></Response>`;
}
