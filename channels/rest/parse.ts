/** A REST request as Rasa's REST channel takes it. */
export interface RestRequest {
  sender: string;
  message: string;
  metadata: Record<string, unknown>;
  /** Renames the channel the message is attributed to, as in Rasa. */
  inputChannel: string | undefined;
}

/** `{"sender", "message", "metadata"?, "input_channel"?}` → the request, or what is wrong with it. */
export function parseRestRequest(body: Record<string, unknown>): RestRequest | string {
  const { sender, message, metadata } = body;
  const inputChannel = body.input_channel;
  if (sender === undefined || sender === null) return 'missing "sender": the id of the user who sends the message';
  if (typeof sender !== 'string' || sender.trim() === '') return '"sender" must be a non-empty string';
  if (message === undefined || message === null) return 'missing "message": the text the user sent';
  if (typeof message !== 'string') return '"message" must be a string';
  if (metadata !== undefined && metadata !== null && (typeof metadata !== 'object' || Array.isArray(metadata))) {
    return '"metadata" must be a JSON object';
  }
  if (inputChannel !== undefined && inputChannel !== null && typeof inputChannel !== 'string') return '"input_channel" must be a string';
  return {
    sender,
    message,
    metadata: (metadata as Record<string, unknown> | null | undefined) ?? {},
    inputChannel: typeof inputChannel === 'string' && inputChannel !== '' ? inputChannel : undefined,
  };
}
