import {
  InputChannel,
  UserMessage,
  addressPart,
  credentialsSchema,
  formBody,
  rawBytes,
  requireVerified,
  secret,
  z,
  BadRequestError,
  type Context,
  type ReplyAddress,
  type OnNewMessage,
  type Router,
  twilioSignedUrl,
} from 'switchboard';
import { TwilioOutput } from './output.js';
import { parseMessage } from './parse.js';
import { verifySignature } from './verify.js';

export { TwilioOutput, splitText, apiName, MAX_BODY } from './output.js';
export { parseMessage, locationText } from './parse.js';
export { verifySignature, computeSignature, signedPayload, signatureSettings, urlVariants } from './verify.js';
export type { SignatureAlgorithm } from './verify.js';

/** E.164 (optionally `whatsapp:`), a short code, or an alphanumeric sender ID. */
const SENDER = /^(whatsapp:)?\+[1-9]\d{5,14}$|^\d{3,8}$|^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/;

const credentials = credentialsSchema({
  account_sid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'must be an account SID (AC followed by 32 hex digits)').meta({ description: 'Account SID (Console → Account info)' }),
  auth_token: secret(z.string().min(1), 'Auth Token (Console → Account info): the API password and the webhook signature key'),
  twilio_number: z.string().regex(SENDER, 'must be +<number>, whatsapp:+<number>, a short code or a sender ID').meta({ description: 'the number answers come from: +14155551234, or whatsapp:+14155238886 for WhatsApp' }),
  messaging_service_sid: z.string().regex(/^MG[0-9a-fA-F]{32}$/, 'must be a Messaging Service SID (MG followed by 32 hex digits)').optional().meta({ description: 'send from this Messaging Service instead of twilio_number' }),
  webhook_signing_keys: secret(z.record(z.string().min(1), z.string().min(1)), 'SharedKey id → secret, for webhooks Twilio signs with a SharedKey (X-Twilio-Webhooks-Signature-Settings)').optional(),
  webhook_url: z.url({ protocol: /^https?$/ }).optional().meta({ description: 'the webhook URL exactly as set in Twilio, when a proxy changes the URL the server sees' }),
  api_url: z.url({ protocol: /^https?$/ }).default('https://api.twilio.com').meta({ description: "Twilio's REST API base URL (proxies, tests)" }),
});

type Credentials = z.output<typeof credentials>;

/** What Twilio expects back: TwiML saying "no reply here" (answers go through the REST API). */
export const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

/**
 * Twilio Programmable Messaging (SMS, MMS, WhatsApp) on `POST /webhooks/twilio/webhook`: the signature is checked
 * first, the request answered with empty TwiML at once, the message processed in the background and deduplicated by
 * `MessageSid`; answers go through the Messages API. See docs/channels/twilio.md.
 */
export class TwilioInput extends InputChannel<Credentials> {
  static override credentials = credentials;
  static override description = 'Twilio SMS, MMS and WhatsApp (Programmable Messaging)';
  /** Request bodies up to 64kb: a message form: at most 1600 characters of Body and a few fields per media item. */
  static override bodyLimit = '64kb';

  name(): string {
    return 'twilio';
  }


  /** The Messages API client; public so a bot-side integration can send outside an answer. */
  output(): TwilioOutput {
    return new TwilioOutput(this.http, {
      apiUrl: this.credentials.api_url.replace(/\/+$/, ''),
      accountSid: this.credentials.account_sid,
      authToken: this.credentials.auth_token,
      twilioNumber: this.credentials.twilio_number,
      messagingServiceSid: this.credentials.messaging_service_sid,
    });
  }

  /** A message sent first goes to this recipient id, as if it had written. */
  override addressFor(recipient: string): ReplyAddress {
    return { to: recipient };
  }

  /**
   * Answers go `To` the sender (the address's `to`: the incoming `From`), from `twilio_number` or the Messaging
   * Service of the credentials.
   */
  override outputChannel(replyTo: ReplyAddress): TwilioOutput {
    addressPart(replyTo, 'to');
    return this.output();
  }

  /**
   * The URL Twilio signed: `webhook_url` when set (a proxy rewrote the URL), with the request's query string when
   * `webhook_url` has none; else the URL as the client called it (the host's `publicUrl`: `Forwarded:` or
   * X-Forwarded-Proto and -Host only with `--trust-proxy`, else the connection and `Host`).
   */
  signedUrl(ctx: Context): string {
    return twilioSignedUrl(ctx, this.credentials.webhook_url);
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    router.post(
      '/webhook',
      requireVerified(
        (ctx) => verifySignature({ url: this.signedUrl(ctx), raw: rawBytes(ctx), form: Boolean(ctx.is('urlencoded')), headers: ctx.headers }, this.credentials.auth_token, this.credentials.webhook_signing_keys),
        { skip: this.unverified },
      ),
      async (ctx) => {
        const fields = formBody(ctx);
        const parsed = parseMessage(fields);
        if ('reason' in parsed) {
          if (parsed.invalid) throw new BadRequestError(parsed.reason);
          this.logger.debug({ MessageSid: fields.MessageSid, reason: parsed.reason }, 'twilio request ignored');
        } else {
          // Queued, not awaited: Twilio times out after 15 s, and a slow bot must not make it retry.
          await onNewMessage.enqueue(new UserMessage({ ...parsed, replyTo: { to: parsed.senderId }, inputChannel: this.name() }));
        }
        ctx.type = 'text/xml';
        ctx.body = EMPTY_TWIML;
      },
    );
    return router;
  }
}

export default TwilioInput;
