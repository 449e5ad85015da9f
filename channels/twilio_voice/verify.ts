import { safeEqual, verifyTwilioSignature, type RequestHeaders } from 'switchboard';

/**
 * A Twilio Voice webhook is signed as every Twilio webhook is (`X-Twilio-Signature`, the host's
 * `verifyTwilioSignature`, shared with the `twilio` channel): HMAC-SHA1 with the auth token over the URL Twilio
 * called (the `<Gather action>` URL, with its query) and the form fields. With `account_sid` set, the request must
 * also come from that account. `true`, or the reason it failed (for the log, never the client).
 */
export function verifyCall(request: { url: string; raw: Buffer | string; form: boolean; headers: RequestHeaders }, authToken: string | undefined, accountSid: string | undefined): true | string {
  const signed = verifyTwilioSignature(request, authToken);
  if (signed !== true) return signed;
  // Only a form is a call webhook; any other body is refused by the parser (400) and never reaches the bot.
  if (accountSid === undefined || !request.form) return true;
  const given = new URLSearchParams(typeof request.raw === 'string' ? request.raw : request.raw.toString('utf8')).get('AccountSid');
  return safeEqual(given, accountSid) ? true : 'AccountSid is not the configured account_sid';
}
