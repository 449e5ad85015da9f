// The bot Switchboard runs for the Telegram comparison: it echoes the text, as the Telegraf and grammY peers do.
export default async function echo(message) {
  return [{ text: message.text }];
}
