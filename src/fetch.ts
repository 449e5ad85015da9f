/**
 * node-fetch, for a channel that needs a raw `fetch` beside the shared client: a multipart upload (node-fetch's
 * `FormData`), a body read as a stream as it arrives. Loaded on the first call, so a server whose channels never call
 * it does not load it. Prefer `this.http` (`HttpClient`): timeouts, retries that never send a message twice, secrets
 * masked in logs, metrics — none of which a raw `fetch` has. `HttpClient` itself runs on node's `http.request` with a
 * keep-alive agent per scheme: measured at about a third of node-fetch's CPU per call (`bench/transport.mjs`).
 */
import type { RequestInfo, RequestInit, Response } from 'node-fetch';

let loaded: Promise<typeof import('node-fetch')> | undefined;

/** node-fetch's `fetch(url, init)`. */
export async function fetch(url: URL | RequestInfo, init?: RequestInit): Promise<Response> {
  const { default: nodeFetch } = await (loaded ??= import('node-fetch'));
  return nodeFetch(url, init);
}

export type { RequestInfo, RequestInit, Response } from 'node-fetch';
