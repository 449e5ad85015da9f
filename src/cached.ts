import { HttpRequestError } from './http.js';

/**
 * A value a channel obtains with a call and then reuses: a login session, the bot's own user id. Concurrent callers
 * share one call; a failed call is not kept, so the next caller tries again; `renew` replaces a value the platform
 * no longer accepts, once, however many callers noticed.
 */
export class Cached<T> {
  private pending: Promise<T> | undefined;

  constructor(private readonly obtain: () => Promise<T>) {}

  /** The value, obtained on first use. */
  get(): Promise<T> {
    return this.pending ?? this.refresh();
  }

  /** A new value in place of `stale`, unless another caller has already replaced it. */
  async renew(stale: T): Promise<T> {
    const before = this.pending;
    const current = before ? await before.catch(() => undefined) : undefined;
    // Another caller renewed while this one waited: share its call.
    if (this.pending !== before && this.pending !== undefined) return this.pending;
    return current !== undefined && current !== stale ? current : this.refresh();
  }

  /**
   * Runs `call` with the value; when the platform answers 401 (the session expired), renews the value and runs it
   * once more — never in a loop.
   */
  async withRenewal<R>(call: (value: T) => Promise<R>): Promise<R> {
    const value = await this.get();
    try {
      return await call(value);
    } catch (error) {
      if (!(error instanceof HttpRequestError) || error.status !== 401) throw error;
      return call(await this.renew(value));
    }
  }

  private refresh(): Promise<T> {
    const pending = this.obtain();
    this.pending = pending;
    pending.catch(() => {
      if (this.pending === pending) this.pending = undefined;
    });
    return pending;
  }
}
