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
  /**
   * Keeps a small JSON value under `key` for `ttlMs` (the reply address of a recipient's last message, for messages
   * sent first). Optional: without it the host keeps such values in this process only.
   */
  put?(key: string, value: string, ttlMs: number): Promise<void>;
  /** The value `put` kept, if it has not expired. */
  get?(key: string): Promise<string | undefined>;
  /** Resolves when the store can be reached, rejects when not; `GET /health/ready` calls it. Optional. */
  ping?(): Promise<void>;
  close?(): Promise<void>;
}

/** How often the in-memory store looks for expired keys even when it does not grow (a burst, then quiet). */
export const SWEEP_INTERVAL_MS = 60_000;

/**
 * The in-memory store: a map of keys to expiry times. Expired keys are swept as the map grows, and at least every
 * `SWEEP_INTERVAL_MS` (on the next claim, or by an unref'd timer when no claim comes), so memory goes back down after
 * a burst; a map left mostly empty is rebuilt, since a `Map` keeps the room it once needed.
 */
export class MemoryStore implements Store {
  private seen = new Map<string, number>();
  private sweepAt = 1024;
  /** The most keys held since the map was last rebuilt. */
  private peak = 0;
  private lastSweep: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly now: () => number = Date.now) {
    this.lastSweep = now();
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    const expires = this.seen.get(key);
    if (expires !== undefined && expires > now) return false;
    this.seen.set(key, now + ttlMs);
    if (this.seen.size > this.peak) this.peak = this.seen.size;
    if (this.seen.size >= this.sweepAt || now - this.lastSweep >= SWEEP_INTERVAL_MS) this.sweep();
    this.armTimer();
    return true;
  }

  async release(key: string): Promise<void> {
    this.seen.delete(key);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Number of keys held (for tests and metrics). */
  get size(): number {
    return this.seen.size;
  }

  /** Forgets every expired key now. */
  sweep(): void {
    const now = this.now();
    this.lastSweep = now;
    for (const [key, expires] of this.seen) if (expires <= now) this.seen.delete(key);
    // Grow the threshold with the live set so sweeping stays amortised O(1) per claim.
    this.sweepAt = Math.max(1024, this.seen.size * 2);
    if (this.peak > 1024 && this.seen.size * 4 < this.peak) {
      this.seen = new Map(this.seen);
      this.peak = this.seen.size;
    }
    if (this.seen.size === 0) void this.close();
  }

  /** While keys are held, a timer sweeps them when claims stop coming; it never keeps the process alive. */
  private armTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.timer.unref();
  }
}
