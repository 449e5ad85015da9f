/**
 * Rasa's REST request shape, `{"sender", "message", "metadata"?, "input_channel"?}`: what the `rest` and `callback`
 * channels take, and what any channel speaking Rasa's REST protocol can read with the same rules.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Context } from 'koa';
import { jsonBody } from './body.js';
import { BadRequestError, ForbiddenError, UnauthorizedError } from './errors.js';
import { JWT_METHODS, verifyJwt, type JwtMethod } from './jwt.js';
import type { Logger } from './logger.js';
import { isObject } from './payload.js';
import { secret, z } from './schema.js';
import { bearerToken } from './signature.js';

/** A request as Rasa's REST channel takes it. */
export interface RestRequest {
  sender: string;
  message: string;
  metadata: Record<string, unknown>;
  /** Renames the channel the message is attributed to, as in Rasa. */
  inputChannel: string | undefined;
}

/**
 * The sender as a string. Rasa takes any JSON value and converts it with Python's `str()`; numbers are common (phone
 * numbers, database ids), so whole numbers are converted the same way. Others are refused: a fraction or an integer
 * beyond 2^53 would not come out as Python writes it, and `true` or an object is a client bug.
 */
function senderString(sender: unknown): string | undefined {
  if (typeof sender === 'number') return Number.isSafeInteger(sender) ? String(sender) : undefined;
  return typeof sender === 'string' && sender.trim() !== '' ? sender : undefined;
}

/** `{"sender", "message", "metadata"?, "input_channel"?}` → the request, or what is wrong with it. */
export function parseRestRequest(body: Record<string, unknown>): RestRequest | string {
  const { sender, message, metadata } = body;
  const inputChannel = body.input_channel;
  if (sender === undefined || sender === null) return 'missing "sender": the id of the user who sends the message';
  const senderId = senderString(sender);
  if (senderId === undefined) {
    return typeof sender === 'number'
      ? '"sender" as a number must be a whole number below 2^53; send other ids as strings'
      : '"sender" must be a non-empty string or a whole number';
  }
  if (message === undefined || message === null) return 'missing "message": the text the user sent';
  if (typeof message !== 'string') return `"message" must be a string${typeof message === 'number' ? ` ("${String(message)}", not ${String(message)})` : ''}`;
  if (metadata !== undefined && metadata !== null && !isObject(metadata)) return '"metadata" must be a JSON object';
  if (inputChannel !== undefined && inputChannel !== null && typeof inputChannel !== 'string') return '"input_channel" must be a string';
  return {
    sender: senderId,
    message,
    metadata: (metadata as Record<string, unknown> | null | undefined) ?? {},
    inputChannel: typeof inputChannel === 'string' && inputChannel !== '' ? inputChannel : undefined,
  };
}

/** How a request authenticated (`authenticateRest`): by the token, or by a JWT with these claims. */
export type RestAuthenticated = { by: 'token' } | { by: 'jwt'; claims: Record<string, unknown> };

export interface RestRequestOptions {
  /**
   * Whether `input_channel` may rename the channel for unauthenticated requests (a section's
   * `allow_input_channel: true`). Otherwise anyone could file a message under another channel's user
   * (`"input_channel": "slack"` joins that Slack user's conversation), so it is ignored. Default false.
   */
  allowInputChannel?: boolean;
  /**
   * What `authenticateRest` resolved: an authenticated request may set `input_channel`, and a JWT must have Rasa's
   * scope for the sender (`user.role` `admin`, or `user` with `user.username` equal to `sender`), else 403.
   */
  authenticated?: RestAuthenticated | undefined;
  /** Where an ignored `input_channel` is noted, at debug. */
  logger?: Logger;
}

/**
 * The request's body read as a REST request; anything else is a `BadRequestError` (400) saying what is wrong.
 * `input_channel` is dropped unless `options.allowInputChannel` (ignored rather than refused, so Rasa clients that
 * always send it keep working).
 */
export function restRequest(ctx: Context, options: RestRequestOptions = {}): RestRequest {
  const request = parseRestRequest(jsonBody(ctx));
  if (typeof request === 'string') throw new BadRequestError(request);
  const authenticated = options.authenticated;
  if (authenticated?.by === 'jwt' && !jwtScopeAllows(authenticated.claims, request.sender)) {
    throw new ForbiddenError('the JWT does not cover this sender: its user.role must be "admin", or "user" with user.username equal to "sender"');
  }
  if (request.inputChannel !== undefined && options.allowInputChannel !== true && authenticated === undefined) {
    options.logger?.debug(
      { input_channel: request.inputChannel.slice(0, 64) },
      'input_channel ignored: the request is not authenticated and the section does not set allow_input_channel: true',
    );
    return { ...request, inputChannel: undefined };
  }
  return request;
}

/** Rasa's `sufficient_scope`: `user.role` `admin` may speak for anyone, `user` only as `user.username`. */
function jwtScopeAllows(claims: Record<string, unknown>, sender: string): boolean {
  const user = isObject(claims.user) ? claims.user : {};
  if (user.role === 'admin') return true;
  return user.role === 'user' && typeof user.username === 'string' && user.username === sender;
}

/** How a REST request may authenticate: the `token`, and a JWT checked with `jwtKey` and `jwtMethod`. */
export interface RestAuth {
  token?: string | undefined;
  jwtKey?: string | undefined;
  jwtMethod?: JwtMethod;
}

/** The key of a section's request token (`token` for `rest`; `callback` calls it `auth_token`). */
export function restTokenKey() {
  return secret(z.string(), 'requests must carry it as "Authorization: Bearer <token>" or ?token=<token> (Rasa\'s --auth-token)').optional();
}

/** The other keys with which a section speaking Rasa's REST protocol authenticates requests, as `rest` has them. */
export const restAuthKeys = {
  jwt_key: secret(z.string(), 'accept a JWT in "Authorization: Bearer": the HS* secret or a PEM public key (Rasa\'s --jwt-secret)').optional(),
  jwt_method: z.enum(JWT_METHODS).default('HS256').meta({ description: "the JWT algorithm (Rasa's --jwt-method)" }),
  allow_input_channel: z.boolean().default(false).meta({ description: 'honour "input_channel" from unauthenticated requests' }),
};

/** A section's `RestAuth`: its token (an empty one is none) and `jwt_key`/`jwt_method`. */
export function restAuthOf(token: string | undefined, keys: { jwt_key?: string | undefined; jwt_method?: JwtMethod | undefined }): RestAuth {
  return { token: token || undefined, jwtKey: keys.jwt_key || undefined, jwtMethod: keys.jwt_method ?? 'HS256' };
}

/** Equal in constant time, whatever the lengths: both sides are hashed first, so not even the length leaks. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** `?token=` (first value), as Rasa's `--auth-token` is given. */
function queryToken(ctx: Context): string | undefined {
  const value = ctx.query.token;
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' && first !== '' ? first : undefined;
}

/**
 * Authenticates a REST request as Rasa's server does: the `token` as `?token=` or `Authorization: Bearer`, compared in
 * constant time; or, with `jwtKey`, a JWT in `Authorization: Bearer` (algorithm `jwtMethod`, `exp`/`nbf` checked when
 * present). With neither configured, resolves undefined (nothing required). With either configured, a request that
 * passes neither is an `UnauthorizedError` (401) whose message never repeats what was sent. Pass the result to
 * `restRequest`, which checks a JWT's scope against the sender.
 */
export async function authenticateRest(ctx: Context, auth: RestAuth): Promise<RestAuthenticated | undefined> {
  const { token, jwtKey } = auth;
  if (!token && !jwtKey) return undefined;
  const fromHeader = bearerToken(ctx.headers);
  const fromQuery = queryToken(ctx);
  if (!fromHeader && !fromQuery) throw new UnauthorizedError('authentication required: send the token as "Authorization: Bearer <token>" or ?token=<token>');
  if (token) {
    for (const given of [fromHeader, fromQuery]) if (given !== undefined && sameSecret(given, token)) return { by: 'token' };
  }
  if (jwtKey && fromHeader) {
    const result = await verifyJwt(fromHeader, jwtKey, auth.jwtMethod ?? 'HS256');
    if (typeof result !== 'string') return { by: 'jwt', claims: result };
    // A header that is not even shaped like a JWT was meant as the token: say the token is wrong, not the JWT.
    if (!token || fromHeader.split('.').length === 3) throw new UnauthorizedError(`invalid JWT: ${result}`);
  }
  throw new UnauthorizedError('invalid token');
}

/** True for an address only this machine can reach: 127.0.0.0/8, ::1, and IPv4-mapped 127.x. */
export function isLoopback(address: string): boolean {
  return /^(?:::ffff:)?127\./i.test(address) || address === '::1' || address === 'localhost';
}

/**
 * Warns, once the server listens, that a channel taking REST requests has no authentication on an address others can
 * reach (all interfaces, or a non-loopback one). `address` is what the HTTP server reports.
 */
export function warnIfOpen(logger: Logger, channel: string, auth: RestAuth, address: AddressInfo | string | null | undefined, tokenKey = 'token'): void {
  if (auth.token || auth.jwtKey) return;
  if (!address || typeof address === 'string' || isLoopback(address.address)) return;
  logger.warn(
    { address: address.address, port: address.port },
    `${channel} has no token and listens on ${address.address}: anyone who can reach it can talk to the bot as any sender; set "${tokenKey}" (or "jwt_key") in its section, or listen on 127.0.0.1`,
  );
}
