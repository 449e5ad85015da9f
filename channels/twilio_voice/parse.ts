/**
 * Twilio Voice webhooks (the call's first request, and each `<Gather>` result) → what the call needs. Pure: no I/O.
 * Field names are Twilio's (https://www.twilio.com/docs/voice/twiml#request-parameters and
 * https://www.twilio.com/docs/voice/twiml/gather#action), so the code reads beside the docs.
 */

/** The call as Rasa's voice channels describe it to the bot (`CallParameters`). */
export interface CallParameters {
  /** `CallSid`. */
  call_id: string;
  /** The caller's number (`Caller`, or `From`). */
  user_phone: string;
  /** The number called (`Called`, or `To`). */
  bot_phone?: string;
  /** `inbound`, `outbound-api` or `outbound-dial`. */
  direction?: string;
}

/**
 * One webhook request of a call. `start`: a new call (the bot gets the initial prompt); `speech`: what the caller
 * said; `silence`: a `<Gather>` that heard nothing (the caller is prompted again); `ended`: a status callback for a
 * call that is over (nothing to say).
 */
export type CallEvent =
  | { kind: 'start' | 'speech'; text: string; senderId: string; metadata: Record<string, unknown> }
  | { kind: 'silence'; senderId: string; metadata: Record<string, unknown> }
  | { kind: 'ended'; senderId: string; status: string };

/** A request that is not a call webhook: answered 400. */
export interface Invalid {
  reason: string;
}

/** Call statuses of a call that is over: Twilio sends them to a status callback, never to a running `<Gather>`. */
const ENDED = new Set(['completed', 'busy', 'failed', 'no-answer', 'canceled']);

/**
 * The form fields of one request → the call event. `gathered`: the request came back to a `<Gather action>` this
 * channel rendered (its URL carries the channel's marker), so a request without speech is silence, not a new call.
 * Rasa treats only `CallStatus=ringing` without speech as a new call; the first request of an outbound call is
 * `in-progress`, which Rasa answered with the reprompt instead of the initial prompt.
 */
export function parseCall(fields: Record<string, string>, gathered: boolean, initialPrompt: string): CallEvent | Invalid {
  const callSid = fields.CallSid;
  if (callSid === undefined || callSid.trim() === '') return { reason: 'missing form field "CallSid"' };
  const from = fields.From ?? fields.Caller;
  if (from === undefined || from.trim() === '') return { reason: 'missing form field "From"' };
  const direction = fields.Direction;
  // Rasa takes `From` as the sender; on a call the bot places (`outbound-api`), `From` is the bot's own number, so
  // every outbound call would share one conversation: the person called (`To`) is the sender then.
  const outbound = direction !== undefined && direction.startsWith('outbound');
  const to = fields.To ?? fields.Called;
  const senderId = outbound && to !== undefined && to.trim() !== '' ? to : from;

  const status = fields.CallStatus ?? '';
  if (ENDED.has(status)) return { kind: 'ended', senderId, status };

  const call: CallParameters = {
    call_id: callSid,
    user_phone: outbound && to ? to : (fields.Caller ?? from),
    ...((outbound ? from : (fields.Called ?? to)) ? { bot_phone: outbound ? from : (fields.Called ?? to)! } : {}),
    ...(direction ? { direction } : {}),
  };
  const metadata: Record<string, unknown> = { ...call };

  const speech = fields.SpeechResult;
  if (speech !== undefined && speech.trim() !== '') {
    const confidence = Number(fields.Confidence);
    if (fields.Confidence !== undefined && Number.isFinite(confidence)) metadata.confidence = confidence;
    return { kind: 'speech', text: speech.trim(), senderId, metadata };
  }
  if (gathered) return { kind: 'silence', senderId, metadata };
  return { kind: 'start', text: initialPrompt, senderId, metadata };
}
