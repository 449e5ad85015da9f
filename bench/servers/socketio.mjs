// The socket.io baseline for `npm run bench`: bare socket.io on a node:http server speaking the same few events as
// Switchboard's channel (session_request → session_confirm, user_uttered → bot_uttered), echoing the text.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { Server } from 'socket.io';

const server = http.createServer((req, res) => {
  res.statusCode = req.url === '/health' ? 200 : 404;
  res.end();
});
const io = new Server(server, { cors: { origin: '*' } });
io.on('connection', (socket) => {
  socket.on('session_request', (data) => {
    const id = typeof data?.session_id === 'string' ? data.session_id : randomUUID();
    socket.join(id);
    socket.emit('session_confirm', id);
  });
  socket.on('user_uttered', (data) => socket.emit('bot_uttered', { text: data?.message }));
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
