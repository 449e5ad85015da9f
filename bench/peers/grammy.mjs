// The echo bot on grammY, for `npm run bench`: the signed webhook in, one sendMessage out to BENCH_API_ROOT
// (grammY's own keep-alive agent for an http: API root).
import http from 'node:http';
import { Bot, webhookCallback } from 'grammy';

const { BENCH_TOKEN: token, BENCH_SECRET: secretToken, BENCH_API_ROOT: apiRoot } = process.env;
const bot = new Bot(token, { client: { apiRoot }, botInfo: { id: 1, is_bot: true, first_name: 'bench', username: 'benchbot', can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false } });
bot.on('message:text', (ctx) => ctx.reply(ctx.message.text));
const callback = webhookCallback(bot, 'http', { secretToken });
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') return res.end('ok');
  if (req.method === 'POST' && req.url === '/webhooks/telegram/webhook') return callback(req, res);
  res.statusCode = 404;
  res.end();
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
