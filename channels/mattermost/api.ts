import { Cached, type HttpClient } from 'switchboard';

export interface MattermostApiSettings {
  /** `api_url` (or `url`) without a trailing slash: `https://chat.example.com/api/v4`. */
  baseUrl: string;
  /** A bot or personal access token; else `user` + `pw` log in. */
  token?: string | undefined;
  user?: string | undefined;
  pw?: string | undefined;
}

/**
 * The Mattermost REST calls the channel makes (API v4), through the host's client (timeout, retries on 429/5xx,
 * secrets masked in logs). With `user` + `pw` it logs in (`POST /users/login`, the session token comes back in the
 * `Token` header), keeps the session, and logs in again once when a call answers 401 (the session expired).
 */
export class MattermostApi {
  private readonly session = new Cached(() => this.login());
  private readonly botIdCache = new Cached(() => this.lookUpBotId());
  /** The user id the login answered with: the bot's own. */
  private loginUserId: string | undefined;

  constructor(
    private readonly http: HttpClient,
    private readonly settings: MattermostApiSettings,
  ) {}

  private url(path: string): string {
    return `${this.settings.baseUrl}${path}`;
  }

  private get loginMode(): boolean {
    return !this.settings.token;
  }

  /** `POST /users/login {login_id, password}` → the `Token` header; the body is the bot's user, so its id too. */
  private async login(): Promise<string> {
    const response = await this.http.post(this.url('/users/login'), { login_id: this.settings.user, password: this.settings.pw }, { channel: 'mattermost', idempotent: true });
    const token = response.headers.get('token');
    if (!token) throw new Error('POST /users/login answered without a "Token" header');
    // A session token is a credential obtained at run time: masked in the client's logs like the password.
    this.http.addSecret(token);
    const id = response.body !== null && typeof response.body === 'object' ? (response.body as { id?: unknown }).id : undefined;
    if (typeof id === 'string' && id !== '') this.loginUserId = id;
    return token;
  }

  /** One call with the token; in login mode a 401 logs in again and repeats the call once, never more. */
  private async call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, json: unknown, options: { recipient?: string; retries?: number } = {}): Promise<unknown> {
    const send = async (token: string) =>
      (await this.http.request(this.url(path), { method, json, bearer: token, channel: 'mattermost', recipient: options.recipient, retries: options.retries })).body;
    return this.settings.token ? send(this.settings.token) : this.session.withRenewal(send);
  }

  /** The bot's own user id (`GET /users/me`, or the login answer), fetched once; a failed lookup is not cached. */
  botId(): Promise<string> {
    return this.botIdCache.get();
  }

  private async lookUpBotId(): Promise<string> {
    if (this.loginMode) {
      await this.session.get();
      if (this.loginUserId !== undefined) return this.loginUserId;
    }
    const me = await this.call('GET', '/users/me', undefined);
    const id = me !== null && typeof me === 'object' ? (me as { id?: unknown }).id : undefined;
    if (typeof id !== 'string' || id === '') throw new Error('GET /users/me answered without an "id"');
    return id;
  }

  /** `POST /posts` with one post body (`channel_id`, `message`, `props`…) → the new post's `id` (when answered). */
  async createPost(body: Record<string, unknown>, recipient: string): Promise<string | undefined> {
    const created = await this.call('POST', '/posts', body, { recipient });
    const id = created !== null && typeof created === 'object' ? (created as { id?: unknown }).id : undefined;
    return typeof id === 'string' && id !== '' ? id : undefined;
  }

  /** `PUT /posts/{post_id}/patch`: only the fields given change (`props` is replaced whole). Idempotent. */
  async patchPost(postId: string, patch: Record<string, unknown>, recipient: string): Promise<void> {
    await this.call('PUT', `/posts/${encodeURIComponent(postId)}/patch`, patch, { recipient });
  }

  /** `DELETE /posts/{post_id}`: the post is marked deleted. Idempotent. */
  async deletePost(postId: string, recipient: string): Promise<void> {
    await this.call('DELETE', `/posts/${encodeURIComponent(postId)}`, undefined, { recipient });
  }

  /** `POST /users/me/typing {channel_id}`; not retried, the host repeats it while the bot works. */
  async typing(channelId: string): Promise<void> {
    await this.call('POST', '/users/me/typing', { channel_id: channelId }, { recipient: channelId, retries: 0 });
  }
}
