import { Cached, type HttpClient } from 'switchboard';

export interface RocketChatApiSettings {
  /** `api_url` (or `server_url`) without a trailing slash: `https://chat.example.com`. */
  baseUrl: string;
  user: string;
  password: string;
}

interface Session {
  authToken: string;
  userId: string;
}

/**
 * The Rocket.Chat REST calls the channel makes, through the host's client. Logs in with `POST /api/v1/login` once and
 * keeps the session (Rasa logs in for every message); a 401 logs in again and repeats the call once, never more.
 */
export class RocketChatApi {
  private readonly session = new Cached(() => this.login());

  constructor(
    private readonly http: HttpClient,
    private readonly settings: RocketChatApiSettings,
  ) {}

  private url(path: string): string {
    return `${this.settings.baseUrl}${path}`;
  }

  private async login(): Promise<Session> {
    const response = await this.http.post(this.url('/api/v1/login'), { user: this.settings.user, password: this.settings.password }, { channel: 'rocketchat', idempotent: true });
    const data = response.body !== null && typeof response.body === 'object' ? (response.body as { data?: Partial<Session> }).data : undefined;
    if (typeof data?.authToken !== 'string' || typeof data.userId !== 'string') throw new Error('POST /api/v1/login answered without data.authToken and data.userId');
    // A session token is a credential obtained at run time: masked in the client's logs like the password.
    this.http.addSecret(data.authToken);
    return { authToken: data.authToken, userId: data.userId };
  }

  private async post(path: string, body: Record<string, unknown>, recipient: string): Promise<unknown> {
    const send = (session: Session) =>
      this.http.post(this.url(path), body, { headers: { 'X-Auth-Token': session.authToken, 'X-User-Id': session.userId }, channel: 'rocketchat', recipient });
    return (await this.session.withRenewal(send)).body;
  }

  /**
   * `POST /api/v1/chat.postMessage` with one message body (`roomId` or `channel`, `text`, `attachments`…) → the new
   * message's id and room (`message._id`, `message.rid`), when answered.
   */
  async postMessage(body: Record<string, unknown>, recipient: string): Promise<{ id: string; roomId: string } | undefined> {
    const answer = await this.post('/api/v1/chat.postMessage', body, recipient);
    const message = answer !== null && typeof answer === 'object' ? (answer as { message?: { _id?: unknown; rid?: unknown } }).message : undefined;
    if (typeof message?._id !== 'string' || message._id === '') return undefined;
    return { id: message._id, roomId: typeof message.rid === 'string' ? message.rid : String(body.roomId ?? recipient) };
  }

  /** `POST /api/v1/chat.update {roomId, msgId, text}`: edits the text of a message the bot sent. */
  async updateMessage(roomId: string, msgId: string, text: string): Promise<void> {
    await this.post('/api/v1/chat.update', { roomId, msgId, text }, roomId);
  }

  /** `POST /api/v1/chat.delete {roomId, msgId}`. */
  async deleteMessage(roomId: string, msgId: string): Promise<void> {
    await this.post('/api/v1/chat.delete', { roomId, msgId }, roomId);
  }
}
