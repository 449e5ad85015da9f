import type { InputChannel, InputChannelClass } from '../channel.js';
import { isValidChannelName } from '../channel.js';
import { isDeepStrictEqual } from 'node:util';
import { UserMessage, type BotMessage } from '../message.js';
import { recordSent, type OutputChannel } from '../output.js';
import { describeCredentials, type CredentialsSchema } from '../schema.js';
import { startFakePlatform, startTestHost, type FakePlatform, type PlatformRequest, type TestHost } from './index.js';

/** One BotMessage of each kind, and the awkward ones: more buttons than platforms show, multi-paragraph text. */
export const EVERY_ANSWER_KIND: Array<{ kind: string; message: BotMessage }> = [
  { kind: 'text', message: { text: 'Hello from the conformance kit' } },
  { kind: 'text with paragraphs', message: { text: 'first paragraph\n\nsecond paragraph' } },
  { kind: 'text with buttons', message: { text: 'Pick one', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }] } },
  {
    kind: 'text with many buttons',
    message: { text: 'Pick', buttons: Array.from({ length: 14 }, (_, i) => ({ title: `option ${i + 1}`, payload: `/option{"n":${i + 1}}` })) },
  },
  { kind: 'quick replies', message: { text: 'Quick?', quick_replies: [{ title: 'yes', payload: '/affirm' }, { title: 'no', payload: '/deny' }] } },
  { kind: 'image', message: { image: 'https://i.imgur.com/nGF1K8f.jpg' } },
  { kind: 'text and image', message: { text: 'Look:', image: 'https://i.imgur.com/nGF1K8f.jpg' } },
  {
    kind: 'elements',
    message: {
      elements: [
        { title: 'Card one', subtitle: 'first', image_url: 'https://example.com/1.png', buttons: [{ title: 'open', payload: '/open' }] },
        { title: 'Card two', subtitle: 'second', buttons: [{ title: 'site', type: 'web_url', url: 'https://example.com' }] },
      ],
    },
  },
  { kind: 'attachment', message: { attachment: { type: 'file', payload: { url: 'https://example.com/doc.pdf' } } } },
  { kind: 'custom', message: { custom: { text: 'custom payload', data: { any: 'thing' } } } },
];

export interface ConformanceOptions {
  /** A valid credentials section; a function gets the fake platform's URL (for keys such as callback's `url`). */
  credentials: Record<string, unknown> | ((platformUrl: string) => Record<string, unknown>);
  /** A request the platform would send, carrying one user message. Without it, the request checks are skipped. */
  validRequest?: { body: string | object | URLSearchParams; headers?: Record<string, string>; path?: string };
  /**
   * Signs a request: gets the exact raw body and the full webhook URL, returns the headers to add. Required when the
   * channel declares a verification key; then an unsigned copy of `validRequest` must be answered 401.
   */
  sign?: (raw: string, request: { url: string; headers: Record<string, string> }) => Record<string, string>;
  /** False for channels without `POST /webhook` (a terminal channel). Default true. */
  webhook?: boolean;
  /** The credentials key that replaces the platform's base URL; set to the fake platform. Default `api_url` when declared. */
  apiUrlKey?: string | false;
  /** How the fake platform answers a request (default: 200 `{"ok": true, ...}`), for channels that read answers. */
  platform?: Parameters<typeof startFakePlatform>[0];
  /** Called on each built channel before the host starts it (give a terminal channel its streams). */
  prepare?: (channel: InputChannel) => void;
  /** Where the output channel comes from when `validRequest` gives no message. */
  output?: (channel: InputChannel) => OutputChannel;
  /** Default true: throw a `ConformanceError` listing the failed checks. */
  throwOnFailure?: boolean;
}

export interface ConformanceCheck {
  name: string;
  ok: boolean;
  /** Why it failed. */
  message?: string;
}

export interface ConformanceReport {
  channel: string;
  ok: boolean;
  checks: ConformanceCheck[];
  failures: ConformanceCheck[];
}

/** Thrown by `conformance()` when a check fails; its message lists every failure, one per line. */
export class ConformanceError extends Error {
  readonly report: ConformanceReport;

  constructor(report: ConformanceReport) {
    super(
      `channel ${report.channel} fails ${report.failures.length} of ${report.checks.length} conformance checks:\n` +
        report.failures.map((f) => `  ✘ ${f.name}: ${f.message ?? 'failed'}`).join('\n'),
    );
    this.name = 'ConformanceError';
    this.report = report;
  }
}

/**
 * A copy without the object keys whose value is `undefined`: JSON leaves them out, and reading them gives `undefined`
 * either way, so they are no loss in a round trip (a `Date` or a class instance is).
 */
function withoutUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUndefined);
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, withoutUndefined(v)]));
}

/** The same string with one character, three from the end, replaced by another of its kind. */
function corrupt(value: string): string {
  const at = Math.max(0, value.length - 3);
  const char = value[at] ?? '';
  const replacement = /[0-9]/.test(char) ? (char === '0' ? '1' : '0') : /[A-Z]/.test(char) ? (char === 'A' ? 'B' : 'A') : char === 'a' ? 'b' : 'a';
  return value.slice(0, at) + replacement + value.slice(at + 1);
}

function serialise(body: string | object | URLSearchParams, headers: Record<string, string>): { raw: string; headers: Record<string, string> } {
  const out = { ...headers };
  const hasType = Object.keys(out).some((h) => h.toLowerCase() === 'content-type');
  if (body instanceof URLSearchParams) {
    if (!hasType) out['content-type'] = 'application/x-www-form-urlencoded';
    return { raw: body.toString(), headers: out };
  }
  if (!hasType) out['content-type'] = 'application/json';
  return { raw: typeof body === 'string' ? body : JSON.stringify(body), headers: out };
}

/**
 * Checks a channel class against the contract every Switchboard channel keeps: `name()` is URL-safe and stable,
 * `GET /` answers 200, malformed JSON is a 400 (never a 500), a signed request is accepted and an unsigned one
 * refused when the channel verifies requests, `fromCredentials` names each missing key, and the output channel
 * handles every `BotMessage` kind (natively or by fallback) without throwing. Runs against a real host on an
 * ephemeral port, with the platform's API replaced by a local fake.
 */
export async function conformance(channelClass: InputChannelClass, options: ConformanceOptions): Promise<ConformanceReport> {
  const checks: ConformanceCheck[] = [];
  const check = async (name: string, run: () => void | string | Promise<void | string>) => {
    try {
      const problem = await run();
      checks.push(typeof problem === 'string' ? { name, ok: false, message: problem } : { name, ok: true });
    } catch (error) {
      checks.push({ name, ok: false, message: (error as Error)?.message ?? String(error) });
    }
  };

  let platform: FakePlatform | undefined;
  let host: TestHost | undefined;
  let label = (channelClass as { name?: string }).name ?? 'channel';
  try {
    platform = await startFakePlatform(options.platform);
    const schema = (channelClass as { credentials?: CredentialsSchema }).credentials;
    const keys = describeCredentials(schema);
    const base = typeof options.credentials === 'function' ? options.credentials(platform.url) : { ...options.credentials };
    const apiUrlKey = options.apiUrlKey ?? (keys.some((k) => k.key === 'api_url') ? 'api_url' : false);
    if (apiUrlKey) base[apiUrlKey] = platform.url;
    const build = () => channelClass.fromCredentials(structuredClone(base));

    let channel: InputChannel | undefined;
    await check('fromCredentials builds the channel from valid credentials', async () => {
      channel = await build();
    });
    if (!channel) return finish();
    const name = channel.name();
    label = `"${name}" (${label})`;
    await check('name() is a URL-safe prefix', () => (isValidChannelName(name) ? undefined : `name() returned ${JSON.stringify(name)}`));
    await check('name() is stable', async () => {
      const again = (await build()).name();
      if (channel!.name() !== name || again !== name) return `name() returned ${JSON.stringify(name)}, then ${JSON.stringify(channel!.name())} and ${JSON.stringify(again)}`;
    });
    for (const key of keys.filter((k) => k.required || k.verification)) {
      await check(`fromCredentials rejects a section without "${key.key}", naming it`, async () => {
        const section = structuredClone(base);
        delete section[key.key];
        delete section.allow_unverified;
        try {
          await channelClass.fromCredentials(section);
        } catch (error) {
          const message = (error as Error)?.message ?? '';
          return message.includes(key.key) ? undefined : `the error does not name the key: ${JSON.stringify(message)}`;
        }
        return 'it built the channel anyway';
      });
    }

    options.prepare?.(channel);
    host = await startTestHost(channel, { answers: [] });
    const webhookUrl = `${host.url}/webhooks/${name}${options.validRequest?.path ?? '/webhook'}`;
    await check('GET / (health) answers 200', async () => {
      const response = await host!.request(`/webhooks/${name}/`);
      if (response.status !== 200) return `got ${response.status}: ${response.text.slice(0, 200)}`;
    });
    if (options.webhook !== false) {
      await check('POST /webhook with malformed JSON answers 400, never 500', async () => {
        const raw = '{"malformed": ';
        const headers = { 'content-type': 'application/json', ...(options.sign?.(raw, { url: webhookUrl, headers: {} }) ?? {}) };
        const response = await host!.post(name, raw, { headers, path: options.validRequest?.path });
        if (response.status !== 400) return `got ${response.status}: ${response.text.slice(0, 200)}`;
      });
    }
    const verifies = keys.some((k) => k.verification);
    if (verifies && !options.sign && options.webhook !== false) {
      checks.push({ name: 'signed requests can be checked', ok: false, message: 'the channel declares a verification key, but no sign() was given to conformance()' });
    }
    let output: OutputChannel | undefined = options.output?.(channel);
    let recipient = 'conformance-user';
    let received: UserMessage | undefined;
    if (options.validRequest && options.webhook !== false) {
      const request = serialise(options.validRequest.body, options.validRequest.headers ?? {});
      if (options.sign) {
        await check('a request without a signature is refused with 401', async () => {
          const response = await host!.post(name, request.raw, { headers: request.headers, path: options.validRequest!.path });
          if (response.status !== 401) return `got ${response.status}: ${response.text.slice(0, 200)}`;
        });
        await check('a request with a wrong signature is refused with 401', async () => {
          // The right headers with one character near the end changed: wrong for an HMAC (hex or base64) and for a
          // token alike. Not the last one: a base64 string's last character may carry only padding bits.
          const right = options.sign!(request.raw, { url: webhookUrl, headers: request.headers });
          const signed = Object.fromEntries(Object.entries(right).map(([header, value]) => [header, corrupt(value)]));
          const response = await host!.post(name, request.raw, { headers: { ...request.headers, ...signed }, path: options.validRequest!.path });
          if (response.status !== 401) return `got ${response.status}: ${response.text.slice(0, 200)}`;
        });
        await check('nothing refused reached the bot', () => (host!.received.length === 0 ? undefined : `the bot received ${host!.received.length} message(s)`));
      }
      await check('a valid request is accepted (2xx) and reaches the bot', async () => {
        const signed = options.sign?.(request.raw, { url: webhookUrl, headers: request.headers }) ?? {};
        const response = await host!.post(name, request.raw, { headers: { ...request.headers, ...signed }, path: options.validRequest!.path });
        if (response.status < 200 || response.status > 299) return `got ${response.status}: ${response.text.slice(0, 200)}`;
        const [message] = await host!.bot.waitForMessages(1, 3_000);
        received = message!;
        output ??= message!.output ?? (message!.replyTo !== undefined ? channel!.outputChannel?.(message!.replyTo) : undefined);
        recipient = message!.senderId;
      });
    }
    if (received?.replyTo !== undefined) await checkReplyAddress(channel, received, platform, keys.filter((k) => k.secret).map((k) => base[k.key]), check);
    if (output) {
      for (const { kind, message } of EVERY_ANSWER_KIND) {
        await check(`the output channel sends ${kind} without throwing`, async () => {
          await output!.sendResponse(recipient, structuredClone(message));
        });
      }
      if (typeof output.editMessage === 'function' || typeof output.deleteMessage === 'function') {
        await check('an output that edits or deletes reports each message it sends (reportSent), and changes it through the platform', async () => {
          const { messages, error } = await recordSent(() => output!.sendResponse(recipient, { text: 'To be corrected by the conformance kit' }));
          if (error !== undefined) throw error;
          if (messages.length === 0) return 'sending a text reported no message (call this.reportSent({id, conversation, text}) once the platform answered with its id; give the fake platform an answer with an id through the `platform` option)';
          if (!messages.every((m) => typeof m.id === 'string' && m.id !== '' && isDeepStrictEqual(JSON.parse(JSON.stringify(m)), m))) return `a reported message is not {id: string, ...} plain JSON: ${JSON.stringify(messages).slice(0, 200)}`;
          const text = messages.find((m) => m.text);
          if (typeof output!.editMessage === 'function') {
            if (!text) return 'a text answer reported no message with text: true';
            const before = platform!.requests.length;
            await output!.editMessage(recipient, text, 'Corrected by the conformance kit');
            if (platform!.requests.length === before) return 'editMessage made no platform call';
          }
          if (typeof output!.deleteMessage === 'function') {
            const before = platform!.requests.length;
            await output!.deleteMessage(recipient, messages[0]!);
            if (platform!.requests.length === before) return 'deleteMessage made no platform call';
          }
          return undefined;
        });
      }
    } else {
      checks.push({ name: 'the output channel can be checked', ok: false, message: 'no validRequest that reaches the bot and no output() option: the output channel was not checked' });
    }
    await check('no unexpected error was logged', () => {
      const errors = host!.logs.lines.filter((line) => /"level":(50|60)/.test(line) && !/outgoing call failed/.test(line));
      return errors.length === 0 ? undefined : `logged: ${errors.slice(0, 3).join(' | ')}`;
    });
    return finish();
  } finally {
    await host?.close();
    await platform?.close();
  }

  /**
   * The contract of a channel that puts a reply address on its messages: the message is plain data (it survives a
   * JSON round trip unchanged), the address holds no secret, and the output rebuilt from the round-tripped address
   * makes the same platform call as the message's own (its live output, or the output of the address it came with).
   */
  async function checkReplyAddress(
    channel: InputChannel,
    message: UserMessage,
    fake: FakePlatform,
    secrets: unknown[],
    run: (name: string, body: () => void | string | Promise<void | string>) => Promise<void>,
  ): Promise<void> {
    let copy: UserMessage | undefined;
    await run('a message with a reply address survives a JSON round trip', () => {
      copy = UserMessage.fromJSON(JSON.parse(JSON.stringify(message)));
      // Names only, never values: an address or metadata may hold what must not reach a log.
      const before = withoutUndefined(message.toJSON()) as Record<string, unknown>;
      const after = copy.toJSON() as unknown as Record<string, unknown>;
      const changed = Object.keys(before).filter((key) => !isDeepStrictEqual(before[key], after[key]));
      const address = (before.replyTo ?? {}) as Record<string, unknown>;
      const changedAddress = Object.keys(address).filter((key) => !isDeepStrictEqual(address[key], copy!.replyTo?.[key]));
      if (changed.length > 0) {
        return `it came back different in ${changed.join(', ')}${changedAddress.length > 0 ? ` (replyTo.${changedAddress.join(', replyTo.')})` : ''}: use plain JSON values (no undefined, dates, class instances)`;
      }
    });
    await run('the reply address carries no secret of the credentials', () => {
      const address = JSON.stringify(message.replyTo);
      const leaked = secrets.flatMap((value) => (value !== null && typeof value === 'object' ? Object.values(value) : [value]))
        .filter((value): value is string => typeof value === 'string' && value.length >= 4 && address.includes(value));
      if (leaked.length > 0) return 'the address holds a secret value of the credentials: keep secrets in the channel';
    });
    if (typeof channel.outputChannel !== 'function') {
      checks.push({ name: 'the channel rebuilds the output from the reply address', ok: false, message: 'messages carry replyTo, but the channel has no outputChannel(replyTo)' });
      return;
    }
    if (!copy) return;
    const roundTripped = copy;
    await run('answers to the round-tripped message make the same platform call as the original', async () => {
      const answer: BotMessage = { text: 'Hello from the conformance kit' };
      const sent = async (output: OutputChannel, to: UserMessage): Promise<PlatformRequest[]> => {
        const before = fake.requests.length;
        await output.sendResponse(to.senderId, structuredClone(answer));
        await output.flush?.(to.senderId);
        return fake.requests.slice(before);
      };
      const shape = (requests: PlatformRequest[]) => requests.map((r) => ({ method: r.method, path: r.path, body: r.body, type: r.headers['content-type'], auth: r.headers.authorization }));
      const output = message.output ?? channel.outputChannel!(message.replyTo!);
      // Once unrecorded: a channel's first call may fetch what later ones reuse (a token).
      await sent(output, message);
      const original = shape(await sent(output, message));
      const again = shape(await sent(channel.outputChannel!(roundTripped.replyTo!), roundTripped));
      if (original.length === 0) return 'the original output made no platform call';
      if (!isDeepStrictEqual(again, original)) return `expected ${JSON.stringify(original).slice(0, 300)}, got ${JSON.stringify(again).slice(0, 300)}`;
    });
    if (typeof channel.addressFor === 'function') {
      await run('addressFor(sender) gives an address the channel answers through (sending first)', async () => {
        const address = channel.addressFor!(message.senderId);
        if (address === undefined) return undefined;
        if (!isDeepStrictEqual(JSON.parse(JSON.stringify(address)), address)) return 'addressFor returned an address that does not survive a JSON round trip';
        const before = fake.requests.length;
        const output = channel.outputChannel!(address);
        await output.sendResponse(message.senderId, { text: 'Sent first by the conformance kit' });
        await output.flush?.(message.senderId);
        if (fake.requests.length === before) return 'the output of addressFor(sender) made no platform call';
      });
    }
  }

  function finish(): ConformanceReport {
    const failures = checks.filter((c) => !c.ok);
    const report: ConformanceReport = { channel: label, ok: failures.length === 0, checks, failures };
    if (!report.ok && options.throwOnFailure !== false) throw new ConformanceError(report);
    return report;
  }
}
