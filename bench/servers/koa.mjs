// The rest baseline for `npm run bench`: bare Koa + koa-bodyparser answering Rasa's REST shape with one fixed
// answer, plus GET /health for the startup measurement. No router, no logging, no metrics: the floor.
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';

const app = new Koa();
app.use(bodyParser());
app.use((ctx) => {
  if (ctx.method === 'GET' && ctx.path === '/health') {
    ctx.body = { status: 'ok' };
  } else if (ctx.method === 'POST' && ctx.path === '/webhooks/rest/webhook') {
    const { sender } = ctx.request.body ?? {};
    ctx.body = [{ recipient_id: sender, text: 'Hey! How are you?' }];
  }
});
const server = app.listen(Number(process.env.BENCH_PORT ?? 0), '127.0.0.1', () => process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
