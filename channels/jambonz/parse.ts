import { isObject, nonEmptyString, type JsonValue } from 'switchboard';

/** The `actionHook` of the gather verb this channel sends: jambonz names it in the `verb:hook` it answers with. */
export const GATHER_HOOK = '/gather';

/** Rasa's voice call parameters (`CallParameters`), the metadata of the message that starts a call. */
export interface CallParameters {
  [key: string]: JsonValue;
  call_id: string;
  user_phone: string | null;
  bot_phone: string | null;
  user_name: string | null;
  user_host: string | null;
  bot_host: string | null;
  direction: string | null;
  stream_id: string | null;
}

/** What one message from jambonz asks of the application. */
export type JambonzEvent =
  /** A call arrived (`session:new`): ack it with the first verbs. */
  | { kind: 'call'; msgid: string; call_sid: string; call: CallParameters }
  /** The gather verb heard something (`verb:hook` on `/gather`, `speechDetected` or `dtmfDetected`). */
  | { kind: 'utterance'; msgid: string; call_sid: string; text: string; confidence: number }
  /** The gather verb ended with nothing to pass on (no speech: `timeout`; a partial or empty result; another reason). */
  | { kind: 'no-input'; msgid: string; call_sid: string; reason: string }
  /** jambonz reconnected after the socket dropped (`session:reconnect`): it waits for an ack. */
  | { kind: 'reconnect'; msgid: string; call_sid: string }
  /** The call ended (`call:status` with `call_status: completed`). */
  | { kind: 'ended'; call_sid: string }
  /** Nothing to do (`verb:status`, another call status, a hook of someone else's verb): why, for the log. */
  | { kind: 'ignore'; reason: string; msgid?: string; call_sid?: string; error?: boolean };

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : null;
}

/** The host part of a SIP URI header (`<sip:+1508…@3.212.205.202:5060>;tag=…`), or null. */
function sipHost(header: unknown): string | null {
  const match = typeof header === 'string' ? /sips?:[^@>;]*@([^>;:]+)/i.exec(header) : null;
  return match ? match[1]! : null;
}

/** The first transcript of a gather's speech result: `speech.alternatives` (Rasa reads it there), or inside `speech.transcripts`. */
function firstAlternative(speech: Record<string, unknown>): { transcript: unknown; confidence: unknown } | undefined {
  let alternatives = speech.alternatives;
  if (!Array.isArray(alternatives) && Array.isArray(speech.transcripts) && isObject(speech.transcripts[0])) alternatives = speech.transcripts[0].alternatives;
  if (!Array.isArray(alternatives) || !isObject(alternatives[0])) return undefined;
  return { transcript: alternatives[0].transcript, confidence: alternatives[0].confidence };
}

/**
 * Reads one WebSocket text frame from jambonz. Pure: no I/O. Anything that is not one of the messages the channel acts
 * on comes back as `ignore` with the reason.
 */
export function parseMessage(frame: string): JambonzEvent {
  let message: unknown;
  try {
    message = JSON.parse(frame);
  } catch {
    return { kind: 'ignore', reason: 'not JSON' };
  }
  if (!isObject(message)) return { kind: 'ignore', reason: 'not a JSON object' };
  const type = message.type;
  const msgid = nonEmptyString(message.msgid);
  const callSid = nonEmptyString(message.call_sid);
  const data = isObject(message.data) ? message.data : {};
  const where = { ...(msgid ? { msgid } : {}), ...(callSid ? { call_sid: callSid } : {}) };
  switch (type) {
    case 'session:new': {
      if (!msgid || !callSid) return { kind: 'ignore', reason: 'session:new without msgid or call_sid', ...where };
      const headers = isObject(data.sip) && isObject(data.sip.headers) ? data.sip.headers : {};
      return {
        kind: 'call',
        msgid,
        call_sid: callSid,
        call: {
          call_id: callSid,
          user_phone: str(data.from),
          bot_phone: str(data.to),
          user_name: nonEmptyString(data.caller_name) ?? null,
          user_host: sipHost(headers.from),
          bot_host: sipHost(headers.to),
          direction: str(data.direction),
          stream_id: null,
        },
      };
    }
    case 'session:reconnect':
      if (!msgid || !callSid) return { kind: 'ignore', reason: 'session:reconnect without msgid or call_sid', ...where };
      return { kind: 'reconnect', msgid, call_sid: callSid };
    case 'call:status':
      if (!callSid) return { kind: 'ignore', reason: 'call:status without call_sid', ...where };
      if (data.call_status === 'completed') return { kind: 'ended', call_sid: callSid };
      return { kind: 'ignore', reason: `call status ${String(str(data.call_status))}`, ...where };
    case 'verb:hook': {
      if (!msgid || !callSid) return { kind: 'ignore', reason: 'verb:hook without msgid or call_sid', ...where };
      if (message.hook !== GATHER_HOOK) return { kind: 'ignore', reason: `verb:hook for another hook: ${String(str(message.hook))}`, ...where };
      const reason = str(data.reason) ?? 'none';
      if (reason === 'speechDetected') {
        const speech = isObject(data.speech) ? data.speech : {};
        // Rasa waits for the final transcript; jambonz sends one unless told to send partial ones too.
        if (speech.is_final === false) return { kind: 'no-input', msgid, call_sid: callSid, reason: 'partial transcript' };
        const first = firstAlternative(speech);
        const text = typeof first?.transcript === 'string' ? first.transcript.trim() : '';
        if (text === '') return { kind: 'no-input', msgid, call_sid: callSid, reason: 'no transcript' };
        const confidence = typeof first?.confidence === 'number' ? first.confidence : 1;
        return { kind: 'utterance', msgid, call_sid: callSid, text, confidence };
      }
      if (reason === 'dtmfDetected') {
        // Keypad digits are the user's answer, as Rasa takes them, with full confidence.
        const digits = str(data.digits) ?? '';
        if (digits === '') return { kind: 'no-input', msgid, call_sid: callSid, reason: 'no digits' };
        return { kind: 'utterance', msgid, call_sid: callSid, text: digits, confidence: 1 };
      }
      return { kind: 'no-input', msgid, call_sid: callSid, reason };
    }
    case 'verb:status':
      return { kind: 'ignore', reason: `verb status ${String(str(data.event))}`, ...where };
    case 'jambonz:error':
      // jambonz hit a fatal error on the call and ends it.
      return { kind: 'ignore', reason: `jambonz error: ${String(str(data.error) ?? str(data.message) ?? 'unknown')}`.slice(0, 300), error: true, ...where };
    default:
      return { kind: 'ignore', reason: `unknown message type ${JSON.stringify(type)?.slice(0, 100)}`, ...where };
  }
}
