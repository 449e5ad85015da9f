/**
 * The host's one `AsyncLocalStorage`. What the host follows through a request's or an answer's asynchronous calls (the
 * request's trace, the deliveries an answer's send made, the messages it showed, the messages a webhook handed over)
 * lives in one store object, each piece a field.
 *
 * One storage rather than one per piece, because of what each costs on Node 20: every enabled `AsyncLocalStorage`
 * stores its value on every promise and async resource made anywhere in the process (an init hook per resource, a
 * property per storage), so four of them cost four property writes, and a bigger property array, per promise. Entering
 * a piece copies the store with that field replaced, so the others are kept exactly as separate storages kept them.
 *
 * One instance per process, even when a channel was built against another copy of the package (the loader accepts
 * those): `recordSent` in either copy must see what `reportSent` in the other reports.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** The fields; each module that owns one reads and writes it only through `contextField`. */
export interface HostContext {
  readonly [field: string]: unknown;
}

const KEY = Symbol.for('switchboard.context');
const storage: AsyncLocalStorage<HostContext> = ((globalThis as Record<symbol, unknown>)[KEY] ??= new AsyncLocalStorage<HostContext>()) as AsyncLocalStorage<HostContext>;

/** One field of the context: its value where the caller runs, and a way to run a function with another value. */
export interface ContextField<T> {
  get(): T | undefined;
  /** Runs `fn` with the field set to `value` (undefined: unset), the other fields as they are. */
  run<R>(value: T | undefined, fn: () => R): R;
}

/** The field `name` (a name each owning module picks once; two modules must not share one). */
export function contextField<T>(name: string): ContextField<T> {
  return {
    get: () => storage.getStore()?.[name] as T | undefined,
    run: (value, fn) => storage.run({ ...storage.getStore(), [name]: value }, fn),
  };
}
