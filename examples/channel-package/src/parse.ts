/** An inbound SMS as Echo SMS posts it. */
export interface EchoInbound {
  id: string;
  from: string;
  text: string;
  media: string[];
}

/** `{id, from, to, text, media_urls?}` → the message, or what is wrong with it. Pure. */
export function parseInbound(body: Record<string, unknown>): EchoInbound | string {
  const { id, from, text } = body;
  if (typeof id !== 'string' || id === '') return 'missing "id"';
  if (typeof from !== 'string' || from === '') return 'missing "from"';
  if (text !== undefined && typeof text !== 'string') return '"text" must be a string';
  const media = Array.isArray(body.media_urls) ? body.media_urls.filter((u): u is string => typeof u === 'string') : [];
  return { id, from, text: text ?? '', media };
}
