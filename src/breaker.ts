/** When a circuit breaker opens, and for how long. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  failures?: number;
  /** How long an open circuit fails fast before one trial call is let through. Default 30 s. */
  cooldownMs?: number;
  now?: () => number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * A circuit breaker for calls to one host: closed, every call goes through; after `failures` consecutive failures it
 * opens and calls fail fast for `cooldownMs`; then it is half-open, one trial call goes through — its success closes
 * the circuit, its failure opens it for another cool-down. A host that is down then costs one call per cool-down
 * instead of a timeout and retries per message.
 */
export class CircuitBreaker {
  readonly failures: number;
  readonly cooldownMs: number;
  private readonly now: () => number;
  private consecutive = 0;
  private openedAt: number | undefined;
  private trial = false;

  constructor(options: CircuitBreakerOptions = {}) {
    this.failures = options.failures ?? 5;
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.now = options.now ?? Date.now;
    if (!Number.isInteger(this.failures) || this.failures < 1) throw new RangeError(`failures must be a whole number of at least 1, got ${this.failures}`);
    if (!(this.cooldownMs >= 0)) throw new RangeError(`cooldownMs must be at least 0, got ${this.cooldownMs}`);
  }

  get state(): CircuitState {
    if (this.openedAt === undefined) return 'closed';
    return this.trial || this.now() - this.openedAt >= this.cooldownMs ? 'half-open' : 'open';
  }

  /** True when a call may go ahead now; each true must be followed by `success()` or `failure()`. */
  allow(): boolean {
    if (this.openedAt === undefined) return true;
    if (this.trial || this.now() - this.openedAt < this.cooldownMs) return false;
    this.trial = true;
    return true;
  }

  success(): void {
    this.consecutive = 0;
    this.openedAt = undefined;
    this.trial = false;
  }

  failure(): void {
    this.consecutive++;
    if (this.trial || this.consecutive >= this.failures) {
      this.openedAt = this.now();
      this.trial = false;
    }
  }
}
