import { OutputChannel, type HttpClient } from 'switchboard';

export interface EchoApi {
  http: HttpClient;
  apiUrl: string;
  apiKey: string;
  number: string;
}

/**
 * Answers through Echo SMS's REST API: `POST {api_url}/v1/messages` with a Bearer key. SMS has no buttons or cards:
 * the base class renders them as text (a numbered list), so only text and images are implemented here.
 */
export class EchoSmsOutput extends OutputChannel {
  constructor(private readonly api: EchoApi) {
    super();
  }

  override name(): string {
    return 'echosms';
  }

  private async send(to: string, body: Record<string, unknown>): Promise<void> {
    await this.api.http.post(`${this.api.apiUrl}/v1/messages`, { from: this.api.number, to, ...body }, {
      bearer: this.api.apiKey,
      channel: 'echosms',
      recipient: to,
    });
  }

  async sendTextMessage(recipientId: string, text: string): Promise<void> {
    await this.send(recipientId, { text });
  }

  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    await this.send(recipientId, { media_url: image });
  }
}
