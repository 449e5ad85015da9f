/**
 * What the voice channels (twilio_voice, audiocodes, jambonz) share about turning the bot's answers into speech: the
 * text without emoji, buttons read out, and the answer that ends the call.
 */
import type { Button } from './message.js';

/**
 * Emoji and what builds them: pictographs, flag letters (regional indicators), skin tones, keycaps, variation
 * selectors and joiners. Text-to-speech reads them out by name, or stumbles (Rasa's voice channels strip them too).
 */
const EMOJI = /[\p{Extended_Pictographic}\p{Regional_Indicator}\u{1F3FB}-\u{1F3FF}\u20E3\uFE0E\uFE0F\u200D]/gu;

/** The text as it is spoken: emoji removed, the blanks they leave squeezed, trimmed. */
export function spokenText(text: string): string {
  return text.replace(EMOJI, '').replace(/[ \t]{2,}/g, ' ').trim();
}

/**
 * Buttons read out in one sentence, as Rasa's voice channels do (`send_text_with_buttons_concise`): the text, a full
 * stop if it ends without `.`, `!`, `?` or `:`, then the titles separated by commas ("Pick one" + great, sad →
 * "Pick one. great, sad"). Rasa fails on an empty text (it reads its last character): the titles are said alone.
 */
export function readOutButtons(text: string, buttons: readonly Button[]): string {
  const titles = buttons.map((button) => String(button.title ?? '')).filter((title) => title.trim() !== '').join(', ');
  const lead = text.trim();
  if (lead === '') return titles;
  if (titles === '') return lead;
  return `${/[.!?:]$/.test(lead) ? lead : `${lead}.`} ${titles}`;
}

/** True for the answer that ends a call, `{"custom": {"hangup": true}}`, on every voice channel as in Rasa. */
export function isHangup(json: unknown): boolean {
  return json !== null && typeof json === 'object' && !Array.isArray(json) && (json as { hangup?: unknown }).hangup === true;
}
