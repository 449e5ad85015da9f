// The server the memory test floods, in its own process so its heap is measured alone (`node --expose-gc`): the rest
// and socketio channels, a bot that takes 250 ms per message and counts how many it runs at once, and
// `botConcurrency: 4`. It sends its port over IPC, then answers each `stats` message with its heap after a full GC.
import { SwitchboardServer, silentLogger, type BotMessage, type UserMessage } from 'switchboard';
import RestInput from '../channels/rest/index.js';
import SocketIOInput from '../channels/socketio/index.js';

export const BOT_CONCURRENCY = 4;

const bot = {
  running: 0,
  peak: 0,
  received: 0,
  async handle(message: UserMessage): Promise<BotMessage[]> {
    this.received++;
    this.running++;
    this.peak = Math.max(this.peak, this.running);
    await new Promise((resolve) => setTimeout(resolve, 250));
    this.running--;
    return [{ text: `echo: ${message.text.slice(0, 20)}` }];
  },
};

const server = new SwitchboardServer({
  channels: [RestInput.fromCredentials({}), SocketIOInput.fromCredentials({ session_persistence: true })],
  bot,
  logger: silentLogger,
  limits: { botConcurrency: BOT_CONCURRENCY },
});
const address = await server.listen(0, '127.0.0.1');
const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (request: { type: string }) => {
  if (request.type === 'stats') {
    gc?.();
    gc?.();
    process.send!({
      type: 'stats',
      heapUsed: process.memoryUsage().heapUsed,
      gc: gc !== undefined,
      peak: bot.peak,
      received: bot.received,
      pipelinePeak: server.pipeline.peakConcurrency,
      senders: server.pipeline.activeSenders,
    });
  } else if (request.type === 'stop') {
    void server.close(1_000).then(() => process.exit(0));
  }
});
process.send!({ type: 'ready', port: address.port });
