/**
 * A socket.io test client speaking Rasa's protocol, shared by the socket.io tests: connect (websocket only, no
 * reconnection, disconnected in the test's teardown), wait for the next event, and ask for a session.
 */
import type { ExecutionContext } from 'ava';
import { io as connectClient, type ManagerOptions, type Socket as ClientSocket, type SocketOptions } from 'socket.io-client';

export type { ClientSocket };
export type ClientOptions = Partial<ManagerOptions & SocketOptions> & { namespace?: string };

/** A connected client to `host.url` (and `namespace`), disconnected in the test's teardown. */
export async function connect(t: ExecutionContext, host: { url: string }, options: ClientOptions = {}): Promise<ClientSocket> {
  const { namespace = '/', ...rest } = options;
  const socket = connectClient(host.url + (namespace === '/' ? '' : namespace), { transports: ['websocket'], reconnection: false, forceNew: true, ...rest });
  t.teardown(() => {
    socket.disconnect();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (error) => reject(error));
  });
  return socket;
}

/** The next `event` on the socket; rejects after `timeoutMs`. */
export function next<T = unknown>(socket: ClientSocket, event: string, timeoutMs = 3_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} event within ${timeoutMs} ms`)), timeoutMs);
    socket.once(event, (value: T) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** Asks for a session (a new one, or `sessionId` resumed) and returns the id the server confirms. */
export async function session(socket: ClientSocket, sessionId?: string, timeoutMs?: number): Promise<string> {
  const confirmed = next<string>(socket, 'session_confirm', timeoutMs);
  socket.emit('session_request', sessionId === undefined ? {} : { session_id: sessionId });
  return confirmed;
}
