import {
  InputChannel,
  UserMessage,
  BadRequestError,
  CredentialsError,
  credentialsSchema,
  formBody,
  rawBytes,
  requireVerified,
  twilioSignedUrl,
  verificationSecret,
  z,
  type Context,
  type CredentialsSchema,
  type OnNewMessage,
  type Router,
} from 'switchboard';
import { EMPTY_TWIML, MAX_REPROMPT, REPROMPT_PARAM, TwilioVoiceOutput, voiceResponse, type GatherSettings } from './output.js';
import { parseCall } from './parse.js';
import { verifyCall } from './verify.js';

export { TwilioVoiceOutput, voiceResponse, buttonsSpoken, xmlText, xmlAttribute, actionUrl, EMPTY_TWIML, REPROMPT_PARAM, MAX_REPROMPT } from './output.js';
export type { GatherSettings } from './output.js';
export { parseCall } from './parse.js';
export type { CallEvent, CallParameters } from './parse.js';
export { verifyCall } from './verify.js';

/**
 * `assistant_voice`: Rasa's list is Twilio's basic voices and some Amazon Polly ones; Twilio takes every Polly and
 * Google voice by name (`Polly.Joanna-Neural`, `Google.en-US-Neural2-F`), so those patterns are accepted too.
 */
const VOICE = /^(man|woman|alice)$|^Polly\.[A-Z][A-Za-z]*(-(Neural|Generative|LongForm))?$|^Google\.[a-z]{2,3}-[A-Z]{2}-[A-Za-z0-9]+(-[A-Za-z0-9]+)*$/;
const SPEECH_MODELS = ['default', 'numbers_and_commands', 'phone_call'];

/** Twilio gives up on a webhook after 15 s (and plays its error message): the answer must be back before. */
export const TWILIO_DEADLINE_SECONDS = 15;

const credentials = credentialsSchema({
  auth_token: verificationSecret('Auth Token (Console → Account info): the key of X-Twilio-Signature on every webhook'),
  account_sid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'must be an account SID (AC followed by 32 hex digits)').optional().meta({ description: 'Account SID: when set, requests from another account are refused' }),
  webhook_url: z.url({ protocol: /^https?$/ }).optional().meta({ description: 'the webhook URL exactly as set on the number, when a proxy changes the URL the server sees; also the <Gather> action' }),
  initial_prompt: z.string().min(1).default('hello').meta({ description: 'what the bot is sent when a call comes in' }),
  reprompt_fallback_phrase: z.string().min(1).default("I'm sorry I didn't get that could you rephrase.").meta({ description: 'said when the caller is silent and there is nothing to say again' }),
  assistant_voice: z.string().default('woman').meta({ description: '<Say voice>: man, woman, alice, Polly.<Name>[-Neural], Google.<voice>' }),
  speech_timeout: z.union([z.string(), z.number()]).default('5').meta({ description: 'seconds of silence that end the caller\'s turn, or "auto" (with speech_model numbers_and_commands)' }),
  speech_model: z.string().default('default').meta({ description: 'default, numbers_and_commands or phone_call' }),
  enhanced: z.union([z.boolean(), z.string()]).default(false).meta({ description: "Twilio's premium speech recognition (only with speech_model phone_call)" }),
  response_timeout: z.number().gt(0).max(TWILIO_DEADLINE_SECONDS - 1).default(12).meta({ description: 'seconds the bot has before the call is answered with the --bot-apology text (Twilio gives up after 15)' }),
});

type Credentials = z.output<typeof credentials>;

/**
 * The combinations Rasa's `TwilioVoiceInput` refuses, with its messages in spirit: a `CredentialsError` naming the
 * key (startup stops, exit code 2).
 */
export function checkSpeechSettings(values: Pick<Credentials, 'assistant_voice' | 'speech_timeout' | 'speech_model' | 'enhanced'>): void {
  const voice = values.assistant_voice;
  if (!VOICE.test(voice)) {
    throw new CredentialsError(`"assistant_voice": ${JSON.stringify(voice)} is not a voice Twilio has (man, woman, alice, Polly.<Name>, Google.<voice>; see Twilio's list of voices)`, 'assistant_voice');
  }
  const timeout = String(values.speech_timeout).trim();
  if (!/^\d+$/.test(timeout) && timeout.toLowerCase() !== 'auto') {
    throw new CredentialsError(`"speech_timeout": ${JSON.stringify(timeout)} is not valid: only a whole number of seconds or "auto"`, 'speech_timeout');
  }
  if (!SPEECH_MODELS.includes(values.speech_model)) {
    throw new CredentialsError(`"speech_model": ${JSON.stringify(values.speech_model)} is not valid: choose one of "default", "numbers_and_commands" or "phone_call"`, 'speech_model');
  }
  const enhanced = String(values.enhanced).trim().toLowerCase();
  if (enhanced !== 'true' && enhanced !== 'false') {
    throw new CredentialsError(`"enhanced": ${JSON.stringify(String(values.enhanced))} is not valid: give true or false`, 'enhanced');
  }
  if (enhanced === 'true' && values.speech_model !== 'phone_call') {
    throw new CredentialsError(`"enhanced": true needs speech_model "phone_call" (it is ${JSON.stringify(values.speech_model)})`, 'enhanced');
  }
  if (timeout.toLowerCase() === 'auto' && values.speech_model !== 'numbers_and_commands') {
    throw new CredentialsError(`"speech_timeout": "auto" needs speech_model "numbers_and_commands" (it is ${JSON.stringify(values.speech_model)})`, 'speech_timeout');
  }
}

/**
 * Twilio Programmable Voice on `POST /webhooks/twilio_voice/webhook`: Twilio does the speech recognition and the
 * text-to-speech, the channel exchanges text with it. Each request is verified (`X-Twilio-Signature`), the bot's
 * answers are collected and returned as TwiML in the response (as `rest` returns JSON), within Twilio's 15 s: a
 * slower bot is answered with the host's apology. See docs/channels/twilio_voice.md.
 */
export class TwilioVoiceInput extends InputChannel<Credentials> {
  static override credentials: CredentialsSchema = credentials;
  static override description = 'Twilio Programmable Voice: phone calls, speech in and out as TwiML';
  /** Request bodies up to 64kb: a call's form has a few dozen short fields and one transcript. */
  static override bodyLimit = '64kb';

  static override fromCredentials<T extends InputChannel>(this: (new (credentials: never) => T) & { credentials?: CredentialsSchema }, raw?: unknown): T {
    const channel = InputChannel.fromCredentials.call(this, raw) as T;
    checkSpeechSettings((channel as unknown as TwilioVoiceInput).credentials);
    return channel;
  }

  name(): string {
    return 'twilio_voice';
  }

  /** The `<Gather>` of every answer: where it sends the result, and how it listens (Rasa's keys). */
  gatherSettings(): GatherSettings {
    const timeout = String(this.credentials.speech_timeout).trim();
    return {
      action: this.credentials.webhook_url ?? `/webhooks/${this.name()}/webhook`,
      voice: this.credentials.assistant_voice,
      speechTimeout: timeout.toLowerCase() === 'auto' ? 'auto' : timeout,
      speechModel: this.credentials.speech_model,
      enhanced: String(this.credentials.enhanced).trim().toLowerCase() === 'true' ? 'true' : 'false',
    };
  }

  /**
   * The URL Twilio signed: the host's rule (`webhook_url`, else the URL called), except that a `<Gather action>` is
   * `webhook_url` with `reprompt` added to its query, so with a query of its own `webhook_url` takes the request's
   * whole query (its own and the reprompt) instead of being taken as it is.
   */
  signedUrl(ctx: Context): string {
    const configured = this.credentials.webhook_url;
    if (configured !== undefined && configured.includes('?') && ctx.querystring !== '') return `${configured.slice(0, configured.indexOf('?'))}?${ctx.querystring}`;
    return twilioSignedUrl(ctx, configured);
  }

  private check(ctx: Context): true | string {
    const url = this.signedUrl(ctx);
    return verifyCall({ url, raw: rawBytes(ctx), form: Boolean(ctx.is('urlencoded')), headers: ctx.headers }, this.credentials.auth_token, this.credentials.account_sid);
  }

  /**
   * Waits for the bot's answers, at most `response_timeout` seconds: Twilio hangs up with an error message at 15 s.
   * Past it the call hears the host's apology and goes on listening; the bot's late answers are dropped (logged).
   */
  private async answer(onNewMessage: OnNewMessage, message: UserMessage, output: TwilioVoiceOutput): Promise<'answered' | 'late'> {
    const gone = new AbortController();
    const outcome = await this.inTime(onNewMessage(message, { signal: gone.signal }).then(() => 'answered' as const), this.credentials.response_timeout * 1000);
    if (outcome === 'late') {
      // A message still waiting behind the caller's previous one never reaches the bot.
      gone.abort();
      this.logger.warn({ sender: message.senderId, timeoutSeconds: this.credentials.response_timeout }, 'the bot did not answer within response_timeout: the caller hears the apology');
    }
    return outcome;
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    router.post('/webhook', requireVerified((ctx) => this.check(ctx), { skip: this.unverified }), async (ctx) => {
      const fields = formBody(ctx);
      const gathered = typeof ctx.query[REPROMPT_PARAM] === 'string';
      const event = parseCall(fields, gathered, this.credentials.initial_prompt);
      if ('reason' in event) throw new BadRequestError(event.reason);
      const settings = this.gatherSettings();
      ctx.type = 'text/xml';
      if (event.kind === 'ended') {
        this.logger.debug({ sender: event.senderId, CallStatus: event.status }, 'call over: nothing to say');
        ctx.body = EMPTY_TWIML;
        return;
      }
      if (event.kind === 'silence') {
        // Rasa says the bot's last utterance again, from its tracker; here it rode along in the action URL (signed
        // by Twilio with the rest of the URL), so any instance can say it.
        const last = ctx.query[REPROMPT_PARAM] as string;
        const text = last.trim() !== '' && last.length <= MAX_REPROMPT ? last : this.credentials.reprompt_fallback_phrase;
        ctx.body = voiceResponse([{ recipient_id: event.senderId, text }], settings);
        return;
      }
      const output = new TwilioVoiceOutput(this.logger);
      const message = new UserMessage({ text: event.text, senderId: event.senderId, output, inputChannel: this.name(), metadata: event.metadata });
      const outcome = await this.answer(onNewMessage, message, output);
      let said = output.messages;
      if (outcome === 'late') {
        const apology = new TwilioVoiceOutput(this.logger);
        await this.apologize(apology, event.senderId);
        said = apology.messages;
      }
      ctx.body = voiceResponse(said, settings);
    });
    return router;
  }
}

export default TwilioVoiceInput;
