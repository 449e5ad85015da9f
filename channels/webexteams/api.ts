import { Cached, type HttpClient } from 'switchboard';

export interface WebexApiSettings {
  /** `api_url` without a trailing slash: `https://webexapis.com/v1`. */
  baseUrl: string;
  accessToken: string;
}

/**
 * The few Webex REST calls the channel makes, all with the bot's Bearer token through the host's client (timeout,
 * retries on 429/5xx honouring Retry-After, the token masked in logs).
 */
export class WebexApi {
  private readonly botIdCache = new Cached(() => this.lookUpBotId());

  constructor(
    private readonly http: HttpClient,
    private readonly settings: WebexApiSettings,
  ) {}

  private url(path: string): string {
    return `${this.settings.baseUrl}${path}`;
  }

  private async get(path: string, recipient?: string): Promise<unknown> {
    const response = await this.http.get(this.url(path), { bearer: this.settings.accessToken, channel: 'webexteams', recipient });
    return response.body;
  }

  /** The bot's own person id (`GET /people/me`), fetched once; a failed lookup is not cached. */
  botId(): Promise<string> {
    return this.botIdCache.get();
  }

  private async lookUpBotId(): Promise<string> {
    const me = await this.get('/people/me');
    const id = me !== null && typeof me === 'object' ? (me as { id?: unknown }).id : undefined;
    if (typeof id !== 'string' || id === '') throw new Error('GET /people/me answered without an "id"');
    return id;
  }

  /** `GET /messages/{id}`: the message a `messages` notification announces. */
  message(id: string, roomId?: string): Promise<unknown> {
    return this.get(`/messages/${encodeURIComponent(id)}`, roomId);
  }

  /** `GET /attachment/actions/{id}`: a card submission, with its `inputs`. */
  attachmentAction(id: string, roomId?: string): Promise<unknown> {
    return this.get(`/attachment/actions/${encodeURIComponent(id)}`, roomId);
  }

  /** `POST /messages` with one message body → the new message's `id` (when answered). */
  async createMessage(body: Record<string, unknown>, recipient: string): Promise<string | undefined> {
    const response = await this.http.post(this.url('/messages'), body, { bearer: this.settings.accessToken, channel: 'webexteams', recipient });
    const id = response.body !== null && typeof response.body === 'object' ? (response.body as { id?: unknown }).id : undefined;
    return typeof id === 'string' && id !== '' ? id : undefined;
  }

  /** `PUT /messages/{messageId}`: edits a message the bot sent (`roomId` and the new `text`/`markdown`). Idempotent. */
  async editMessage(messageId: string, body: Record<string, unknown>, recipient: string): Promise<void> {
    await this.http.request(this.url(`/messages/${encodeURIComponent(messageId)}`), { method: 'PUT', json: body, bearer: this.settings.accessToken, channel: 'webexteams', recipient });
  }

  /** `DELETE /messages/{messageId}`. Idempotent. */
  async deleteMessage(messageId: string, recipient: string): Promise<void> {
    await this.http.request(this.url(`/messages/${encodeURIComponent(messageId)}`), { method: 'DELETE', bearer: this.settings.accessToken, channel: 'webexteams', recipient });
  }
}
