/**
 * Where the host keeps what must be shared between instances behind a load balancer: which platform messages were
 * seen (deduplication) and per-sender locks. In memory by default; a Redis store implements the same interface.
 */
export interface Store {
  /**
   * Marks `key` seen for `ttlMs`. Resolves true when it was not seen before (the caller owns it now), false when it
   * was (a duplicate). Atomic: of two concurrent calls with one key, exactly one gets true.
   */
  claim(key: string, ttlMs: number): Promise<boolean>;
  /** Forgets a claim, so the message can be delivered again (used when it could not be queued). */
  release(key: string): Promise<void>;
  /** Resolves when the store can be reached, rejects when not; `GET /health/ready` calls it. Optional. */
  ping?(): Promise<void>;
  close?(): Promise<void>;
}

/** The in-memory store: a map of keys to expiry times, swept as it grows. */
export class MemoryStore implements Store {
  private readonly seen = new Map<string, number>();
  private sweepAt = 1024;

  constructor(private readonly now: () => number = Date.now) {}

  async claim(key: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    const expires = this.seen.get(key);
    if (expires !== undefined && expires > now) return false;
    this.seen.set(key, now + ttlMs);
    if (this.seen.size >= this.sweepAt) this.sweep(now);
    return true;
  }

  async release(key: string): Promise<void> {
    this.seen.delete(key);
  }

  /** Number of keys held (for tests and metrics). */
  get size(): number {
    return this.seen.size;
  }

  private sweep(now: number): void {
    for (const [key, expires] of this.seen) if (expires <= now) this.seen.delete(key);
    // Grow the threshold with the live set so sweeping stays amortised O(1) per claim.
    this.sweepAt = Math.max(1024, this.seen.size * 2);
  }
}
