import { isObject, nonEmptyString } from 'switchboard';

/** The longest conversation id taken: it becomes part of the URLs the channel hands VoiceAI Connect. */
export const MAX_CONVERSATION_ID_LENGTH = 256;

/** One activity VoiceAI Connect posted, as the text and metadata the bot receives. */
export interface IncomingActivity {
  /** The activity's `id`: deduplicates a delivery VoiceAI Connect repeats. Absent when the activity has none. */
  id: string | undefined;
  text: string;
  metadata: Record<string, unknown>;
}

export type ParsedActivities = { kind: 'activities'; activities: IncomingActivity[]; ignored: string[] } | { kind: 'invalid'; reason: string };

/** The conversation id of a create/activities/disconnect body (`{"conversation": "<id>", ...}`), or why not. */
export function conversationId(body: Record<string, unknown>): string | { reason: string } {
  const id = nonEmptyString(body.conversation);
  if (id === undefined) return { reason: 'missing "conversation"' };
  if (id.length > MAX_CONVERSATION_ID_LENGTH) return { reason: `"conversation" is longer than ${MAX_CONVERSATION_ID_LENGTH} characters` };
  return id;
}

/**
 * The call's parameters from the `start` event, under Rasa's names for voice channels (`CallParameters`): the
 * VoiceAI Connect conversation id, caller and callee with their hosts, the caller's display name.
 */
export function callParameters(parameters: Record<string, unknown>): Record<string, unknown> {
  const pick = (key: string): unknown => parameters[key] ?? null;
  return {
    call_id: pick('vaigConversationId'),
    user_phone: pick('caller'),
    bot_phone: pick('callee'),
    user_name: pick('callerDisplayName'),
    user_host: pick('callerHost'),
    bot_host: pick('calleeHost'),
  };
}

/**
 * One activity as the bot sees it, as Rasa's channel maps them: a `message` is its `text` (metadata: its
 * `parameters`: confidence, recognition output...); the `start` event is `/session_start` with the call's parameters;
 * `DTMF` is `/vaig_event_DTMF` with its `value`; any other event (`noUserInput`, transfer results...) is
 * `/vaig_event_<name>` with its parameters and `value`. Anything else: the reason it is skipped.
 */
export function parseActivity(activity: unknown): IncomingActivity | string {
  if (!isObject(activity)) return 'an activity is not an object';
  const id = typeof activity.id === 'string' && activity.id !== '' ? activity.id : typeof activity.id === 'number' ? String(activity.id) : undefined;
  if (activity.type === 'message') {
    const text = typeof activity.text === 'string' ? activity.text : undefined;
    if (text === undefined || text.trim() === '') return 'a message activity without text';
    return { id, text, metadata: isObject(activity.parameters) ? { ...activity.parameters } : {} };
  }
  if (activity.type === 'event') {
    const name = nonEmptyString(activity.name);
    if (name === undefined) return 'an event activity without a name';
    const parameters = isObject(activity.parameters) ? activity.parameters : {};
    if (name === 'start') return { id, text: '/session_start', metadata: callParameters(parameters) };
    const metadata: Record<string, unknown> = name === 'DTMF' ? {} : { ...parameters };
    if ('value' in activity) metadata.value = activity.value;
    return { id, text: `/vaig_event_${name}`, metadata };
  }
  return `an activity of type ${JSON.stringify(typeof activity.type === 'string' ? activity.type : typeof activity.type)}`;
}

/** The activities of a `POST .../activities` body (`{"conversation", "activities": [...]}`), in order. */
export function parseActivities(body: Record<string, unknown>): ParsedActivities {
  if (!Array.isArray(body.activities)) return { kind: 'invalid', reason: 'missing "activities" list' };
  const activities: IncomingActivity[] = [];
  const ignored: string[] = [];
  for (const item of body.activities) {
    const parsed = parseActivity(item);
    if (typeof parsed === 'string') ignored.push(parsed);
    else activities.push(parsed);
  }
  return { kind: 'activities', activities, ignored };
}
