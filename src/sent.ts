/**
 * What became of answers that carry an `id` (every answer of a message sent first, and a bot's answers where it set
 * one): pending until sent, then the platform's ids of the messages that show it, so `PATCH` and `DELETE
 * /api/v1/conversations/{channel}/{recipient}/messages/{id}` can find them — on any instance under `--redis` (the
 * store keeps them), else in this process.
 */
import { randomBytes } from 'node:crypto';
import type { SentMessage } from './output.js';
import type { Store } from './store.js';

export type SentState = 'pending' | 'sent' | 'failed' | 'deleted';

export interface SentRecord {
  state: SentState;
  /** The platform messages that show the answer, in the order they were sent (for `sent`: see `OutputChannel.reportSent`). */
  messages?: SentMessage[];
}

/** How long an answer stays editable through the API: a week. */
export const SENT_TTL_MS = 7 * 24 * 3600_000;
/** Records kept in this process when the store cannot keep values. */
const IN_MEMORY_RECORDS = 10_000;

/** An answer id chosen by a caller or a bot: 1 to 128 letters, digits, `.`, `_`, `-`. */
export const ANSWER_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** A new answer id (`m_` and 16 random bytes, base64url). */
export function newAnswerId(): string {
  return `m_${randomBytes(16).toString('base64url')}`;
}

/** The answer's `id`, when it carries a valid one. */
export function answerId(answer: object): string | undefined {
  const id = (answer as { id?: unknown }).id;
  return typeof id === 'string' && ANSWER_ID.test(id) ? id : undefined;
}

export class SentLog {
  private readonly memory = new Map<string, { json: string; expires: number }>();

  constructor(
    private readonly store: Store,
    private readonly ttlMs = SENT_TTL_MS,
  ) {}

  private key(channel: string, recipient: string, id: string): string {
    return `sent:${channel}:${id}:${recipient}`;
  }

  async set(channel: string, recipient: string, id: string, record: SentRecord): Promise<void> {
    const key = this.key(channel, recipient, id);
    const json = JSON.stringify(record);
    if (this.store.put) {
      await this.store.put(key, json, this.ttlMs);
      return;
    }
    this.memory.delete(key);
    this.memory.set(key, { json, expires: Date.now() + this.ttlMs });
    if (this.memory.size > IN_MEMORY_RECORDS) this.memory.delete(this.memory.keys().next().value!);
  }

  async get(channel: string, recipient: string, id: string): Promise<SentRecord | undefined> {
    const key = this.key(channel, recipient, id);
    let json: string | undefined;
    if (this.store.get) json = await this.store.get(key);
    else {
      const kept = this.memory.get(key);
      json = kept !== undefined && kept.expires > Date.now() ? kept.json : undefined;
    }
    if (json === undefined) return undefined;
    try {
      const record = JSON.parse(json) as SentRecord;
      return record !== null && typeof record === 'object' && typeof record.state === 'string' ? record : undefined;
    } catch {
      return undefined;
    }
  }
}
