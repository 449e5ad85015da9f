/**
 * Switchboard's public API: everything a channel package needs, by the package's own name.
 * Built-in channels import only from here, exactly as a third-party package does.
 */
export { InputChannel, Router, isInputChannelClass, isValidChannelName } from './channel.js';
/** Koa's request context and next function, for channel route handlers: use these, not your own koa types. */
export type { Context, Next } from 'koa';
export type { ChannelContext, InputChannelClass, RedisConnection } from './channel.js';
export { OutputChannel, CollectingOutputChannel, buttonToText, textWithButtonsToText, splitText, paragraphs, editInPlace, recordSent } from './output.js';
export type { SendOptions, StreamingText, SentMessage } from './output.js';
export { UserMessage, DEFAULT_SENDER_ID, addressPart } from './message.js';
export type { BotMessage, Button, Element, CollectedMessage, UserMessageInit, UserMessageData, ReplyAddress, JsonValue } from './message.js';
export type { Bot, BotFunction, BotContext, BotResult, BotStreamItem } from './bot.js';
export { Pipeline, DEFAULT_LIMITS, DEFAULT_APOLOGY, DEFAULT_BOT_TIMEOUT_MS } from './pipeline.js';
export type { OnNewMessage, Outcome, Accepted, PipelineOptions, PipelineLimits, EnqueueOptions, BotFailure, PendingMessage, OutputSource } from './pipeline.js';
export { currentTrace, parseTraceparent } from './trace.js';
export type { RequestTrace } from './trace.js';
export { MemoryStore } from './store.js';
export type { Store } from './store.js';
export { RedisStore, DEFAULT_REDIS_PREFIX, maskRedisUrl } from './redis.js';
export type { RedisStoreOptions } from './redis.js';
export { SharedInbox, DEFAULT_CLAIM_TTL_MS } from './inbox.js';
export type { SharedInboxOptions, InboxEntry, InboxRunner, AddResult, AddOptions } from './inbox.js';
export { HttpClient, HttpRequestError, parseRetryAfter, isSafeToRetry, countDeliveries } from './http.js';
export { fetch } from './fetch.js';
export type { RequestInfo, RequestInit, Response } from './fetch.js';
export { MemoryOutbox, OutboxFullError, DEFAULT_OUTBOX_TTL_MS, DEFAULT_OUTBOX_LIMITS } from './outbox.js';
export type { Outbox, OutboxAnswer, PendingAnswer, GiveUpReason, MemoryOutboxOptions } from './outbox.js';
export type { HttpClientOptions, HttpObserver, RequestOptions, HttpResponse } from './http.js';
export { hmac, safeEqual, verifyHmac, rawBody, rawBytes, requireVerified, headerValue, bearerToken, verifyHubSignature, hubChallenge } from './signature.js';
export type { HmacAlgorithm, HmacCheck, RequestCheck, RequestHeaders } from './signature.js';
export { verifyTwilioSignature, computeTwilioSignature, twilioSignedPayload, twilioSignatureSettings, twilioUrlVariants, twilioSignedUrl } from './twilio.js';
export type { TwilioSignatureAlgorithm, TwilioSignedRequest } from './twilio.js';
export { jsonBody, formBody, jsonTooDeep, MAX_JSON_DEPTH } from './body.js';
export { withinReplayWindow, timestampMs, checkEntryTimes, FUTURE_SKEW_SECONDS } from './replay.js';
export { parseForwarded, publicUrl } from './forwarded.js';
export { isObject, nonEmptyString, idString, compact } from './payload.js';
export { parseRestRequest, restRequest, authenticateRest, isLoopback, warnIfOpen, restTokenKey, restAuthKeys, restAuthOf } from './rest.js';
export type { RestRequest, RestRequestOptions, RestAuth, RestAuthenticated } from './rest.js';
export { verifyJwt, verifyPlatformToken, JWT_METHODS } from './jwt.js';
export type { JwtMethod, JwtRequirements, PlatformTokenCheck } from './jwt.js';
export { Cached } from './cached.js';
export {
  HttpError,
  BadRequestError,
  UnauthorizedError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  ConflictError,
  UnsupportedMediaTypeError,
  BacklogFullError,
  ConfigError,
  CredentialsError,
} from './errors.js';
export { z, credentialsSchema, secret, verificationSecret, parseCredentials, describeCredentials, secretKeys } from './schema.js';
export type { CredentialsSchema, KeyDoc, KeyMeta, ParsedCredentials } from './schema.js';
export { createLogger, channelLogger, maskSecrets, silentLogger, OutageLog } from './logger.js';
export type { Logger } from './logger.js';
export { SwitchboardServer } from './server.js';
export type { ServerOptions, MetricsOptions, RegistrationRetry, ShutdownReport } from './server.js';
export type { MessageOutcome, BotKind } from './metrics.js';
export { loadChannelClass, loadChannels, createChannel, builtinChannels } from './loader.js';
export { readCredentialsFile, parseCredentialsText, interpolateEnv } from './credentials.js';
export type { ChannelSection } from './credentials.js';
export { VERSION } from './version.js';
export { spokenText, readOutButtons, isHangup } from './voice.js';
