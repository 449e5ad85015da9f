// The echo bot on Telegraf, for `npm run bench`: the signed webhook in, one sendMessage out to BENCH_API_ROOT.
// webhookReply is off so the answer is a real API call the mock counts, as Switchboard and grammY make it.
import http from 'node:http';
import { Telegraf } from 'telegraf';

const { BENCH_TOKEN: token, BENCH_SECRET: secretToken, BENCH_API_ROOT: apiRoot } = process.env;
const bot = new Telegraf(token, { telegram: { apiRoot, webhookReply: false, agent: new http.Agent({ keepAlive: true }) } });
bot.botInfo = { id: 1, is_bot: true, first_name: 'bench', username: 'benchbot' };
bot.on('text', (ctx) => ctx.reply(ctx.message.text));
const callback = bot.webhookCallback('/webhooks/telegram/webhook', { secretToken });
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') return res.end('ok');
  return callback(req, res, () => {
    res.statusCode = 404;
    res.end();
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
