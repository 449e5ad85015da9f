import { createInterface, type Interface } from 'node:readline';
import { InputChannel, UserMessage, credentialsSchema, z, type OnNewMessage, type Router } from 'switchboard';
import { ConsoleOutput } from './output.js';

export { ConsoleOutput, BOT_PREFIX } from './output.js';

export const DEFAULT_SENDER = 'console_user';
export const DEFAULT_PROMPT = 'Your input -> ';
export const GREETING = 'Bot loaded. Type a message and press Enter; type a number to press that button; Ctrl-D to quit.';

const credentials = credentialsSchema({
  sender: z.string().min(1).default(DEFAULT_SENDER).meta({ description: 'the sender id of the messages typed' }),
  prompt: z.string().default(DEFAULT_PROMPT).meta({ description: 'shown before each input when stdin is a terminal' }),
});

/** Where the console reads and writes; the process's stdin and stdout unless a test gives its own. */
export interface ConsoleStreams {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Terminal mode (prompt, line editing); default: when both streams are TTYs. */
  terminal?: boolean;
}

/**
 * Chat with the bot in a terminal: `node dist/run.js --channel console` (`npm run shell`). Each line read is one
 * message, answered before the next line is processed, so a script piped into stdin is played in order. A number
 * picks that button of the last answer that had buttons. At the end of input (Ctrl-D) the pending answers are
 * printed, then the channel asks the host to shut down. See docs/console.md.
 */
export class ConsoleInput extends InputChannel {
  static override credentials = credentials;
  static override description = 'chat with the bot in the terminal (stdin/stdout)';

  /** Set before `start()` to read and write elsewhere (tests). */
  streams: ConsoleStreams;
  private onNewMessage: OnNewMessage | undefined;
  private output: ConsoleOutput | undefined;
  private readline: Interface | undefined;
  /** The lines are processed one after the other on this chain. */
  private chain: Promise<void> = Promise.resolve();
  private closing = false;

  constructor(credentialsValues: Record<string, unknown> = {}, streams?: ConsoleStreams) {
    super(credentialsValues);
    this.streams = streams ?? { input: process.stdin, output: process.stdout };
  }

  name(): string {
    return 'console';
  }

  get sender(): string {
    const sender = this.credentials.sender;
    return typeof sender === 'string' && sender !== '' ? sender : DEFAULT_SENDER;
  }

  get prompt(): string {
    const prompt = this.credentials.prompt;
    return typeof prompt === 'string' ? prompt : DEFAULT_PROMPT;
  }

  /** Only the health route: messages come from the terminal, not over HTTP. */
  router(onNewMessage: OnNewMessage): Router {
    this.onNewMessage = onNewMessage;
    return this.newRouter();
  }

  /** Resolves when every line read so far has been answered. */
  idle(): Promise<void> {
    return this.chain;
  }

  override async start(): Promise<void> {
    if (this.readline || this.closing) return;
    const { input, output } = this.streams;
    const terminal = this.streams.terminal ?? Boolean((input as { isTTY?: boolean }).isTTY && (output as { isTTY?: boolean }).isTTY);
    this.output = new ConsoleOutput(output);
    // Without a terminal, readline gets no output stream: it then never writes prompts or escape codes.
    const rl = createInterface({ input, ...(terminal ? { output, prompt: this.prompt } : {}), terminal, crlfDelay: Infinity });
    this.readline = rl;
    const prompt = () => {
      if (terminal && !this.closing) rl.prompt();
    };
    // After the host's banner (printed once start() resolves), then the lines in the order they were read.
    this.enqueue(async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      await this.output!.write([GREETING]);
      prompt();
    });
    rl.on('line', (line) => {
      this.enqueue(async () => {
        if (await this.handleLine(line)) prompt();
      });
    });
    // Ctrl-C in a terminal: readline catches it in raw mode; stop as at the end of input.
    rl.on('SIGINT', () => rl.close());
    rl.on('close', () => {
      // In a terminal the cursor is still on the prompt line.
      if (terminal) void this.output!.write(['']).catch(() => undefined);
      this.enqueue(async () => {
        if (!this.closing) this.context.requestShutdown?.();
      });
    });
  }

  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((error: unknown) => {
      this.logger.error({ err: error }, 'console: handling a line failed');
    });
  }

  /** Sends one line to the bot and waits for its answers; false for an empty line (nothing sent). */
  private async handleLine(line: string): Promise<boolean> {
    const text = line.trim();
    if (text === '') return false;
    if (!this.onNewMessage || !this.output) {
      this.logger.error('console: the channel was started without its router; the message is dropped');
      return true;
    }
    await this.onNewMessage(
      new UserMessage({ text: this.pick(text), senderId: this.sender, output: this.output, inputChannel: this.name() }),
    );
    return true;
  }

  /** A number picks that button of the last answer that had buttons (its payload, else its title). */
  private pick(text: string): string {
    if (!/^\d+$/.test(text)) return text;
    const button = this.output?.buttons[Number(text) - 1];
    if (!button) return text;
    return typeof button.payload === 'string' && button.payload !== '' ? button.payload : button.title;
  }

  override async close(): Promise<void> {
    this.closing = true;
    this.readline?.close();
  }
}

export default ConsoleInput;
