/**
 * The web chat page: one small HTML page, no build step and no framework, embedded here as strings so it ships in
 * dist/ (tsc does not copy .html files). It loads the Socket.IO client the server serves at
 * `{socketio_path}/socket.io.js` and speaks the channel's protocol: `session_request` with the session id kept in
 * localStorage, `user_uttered {message, session_id}`, and renders each `bot_uttered` event.
 */
import { createHash } from 'node:crypto';

/** What the page needs to know about the channel; given to it in a `<meta name="switchboard-webchat">` tag. */
export interface WebchatConfig {
  path: string;
  namespace: string;
  userMessageEvt: string;
  botMessageEvt: string;
  /** The page's title and heading. */
  title?: string;
}

/** The localStorage key the page keeps the session id under. */
export const SESSION_STORAGE_KEY = 'switchboard.webchat.session_id';

const STYLE = `
:root { color-scheme: light; --accent: #1d4ed8; --accent-text: #fff; --bot: #f1f5f9; --border: #cbd5e1; --text: #0f172a; --muted: #475569; }
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; }
body { font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--text); background: #e2e8f0; }
.app { display: flex; flex-direction: column; height: 100vh; height: 100dvh; max-width: 42rem; margin: 0 auto; background: #fff; }
header { display: flex; align-items: center; gap: .75rem; padding: .6rem 1rem; border-bottom: 1px solid var(--border); }
h1 { font-size: 1.1rem; margin: 0; flex: 1; min-width: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#status { margin: 0; font-size: .85rem; color: var(--muted); }
#status::before { content: ""; display: inline-block; width: .6rem; height: .6rem; border-radius: 50%; margin-right: .35rem; background: #94a3b8; }
[data-connection="connected"] #status::before { background: #16a34a; }
[data-connection="reconnecting"] #status { color: #92400e; font-weight: 600; }
[data-connection="reconnecting"] #status::before { background: #f59e0b; }
#new-chat { font: inherit; font-size: .85rem; padding: .3rem .6rem; border: 1px solid var(--border); border-radius: .4rem; background: #fff; color: var(--text); cursor: pointer; }
#banner { display: none; margin: 0; padding: .5rem 1rem; background: #fef3c7; color: #78350f; border-bottom: 1px solid #fcd34d; }
[data-connection="reconnecting"] #banner { display: block; }
#log { flex: 1; overflow-y: auto; list-style: none; margin: 0; padding: 1rem; display: flex; flex-direction: column; gap: .5rem; }
.msg { max-width: 85%; padding: .5rem .75rem; border-radius: .9rem; overflow-wrap: anywhere; }
.msg p { margin: 0; white-space: pre-wrap; }
.msg.bot { align-self: flex-start; background: var(--bot); border-bottom-left-radius: .2rem; }
.msg.user { align-self: flex-end; background: var(--accent); color: var(--accent-text); border-bottom-right-radius: .2rem; }
.msg.system { align-self: center; background: none; color: #b91c1c; font-size: .9rem; }
.msg img { display: block; max-width: 100%; max-height: 16rem; border-radius: .5rem; }
.card { border: 1px solid var(--border); border-radius: .6rem; padding: .5rem; background: #fff; margin-top: .25rem; }
.card strong { display: block; }
.card span { color: var(--muted); font-size: .9rem; }
.chips { display: flex; flex-wrap: wrap; gap: .4rem; margin-top: .5rem; }
.chip { font: inherit; padding: .35rem .85rem; min-height: 2.25rem; border-radius: 999px; border: 1px solid var(--accent); background: #fff; color: var(--accent); cursor: pointer; text-decoration: none; }
.chip:hover:not(:disabled) { background: #eff6ff; }
.chip:disabled { opacity: .55; cursor: default; }
form { display: flex; gap: .5rem; padding: .75rem 1rem; border-top: 1px solid var(--border); }
#message { flex: 1; min-width: 0; font: inherit; padding: .55rem .75rem; border: 1px solid #64748b; border-radius: .5rem; }
#send { font: inherit; padding: .55rem 1rem; border: 0; border-radius: .5rem; background: var(--accent); color: var(--accent-text); cursor: pointer; }
:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
@media (max-width: 30rem) { header { padding: .5rem .75rem; } #log { padding: .75rem; } .msg { max-width: 92%; } form { padding: .5rem .75rem; } }
`;

// Plain ES2017 in the browser, no template literals (this file's own template literal holds it).
const SCRIPT = `
(function () {
  'use strict';
  var STORAGE_KEY = '${SESSION_STORAGE_KEY}';
  var meta = document.querySelector('meta[name="switchboard-webchat"]');
  var config = JSON.parse(meta.getAttribute('content'));
  var root = document.documentElement;
  var log = document.getElementById('log');
  var form = document.getElementById('composer');
  var input = document.getElementById('message');
  var statusText = document.getElementById('status');
  var newChat = document.getElementById('new-chat');

  function readSession() { try { return localStorage.getItem(STORAGE_KEY) || undefined; } catch (e) { return undefined; } }
  function writeSession(id) { try { if (id) localStorage.setItem(STORAGE_KEY, id); else localStorage.removeItem(STORAGE_KEY); } catch (e) { /* private mode */ } }
  var sessionId = readSession();

  function setStatus(state, text) { root.setAttribute('data-connection', state); statusText.textContent = text; }
  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function addItem(who) {
    var li = document.createElement('li');
    li.className = 'msg ' + who;
    var label = document.createElement('span');
    label.className = 'sr-only';
    label.textContent = who === 'user' ? 'You said: ' : who === 'bot' ? 'Bot said: ' : 'Notice: ';
    li.appendChild(label);
    log.appendChild(li);
    return li;
  }
  function addText(who, text) {
    var li = addItem(who);
    var p = document.createElement('p');
    p.textContent = text;
    li.appendChild(p);
    scrollDown();
    return li;
  }
  function addImage(parent, src, alt) {
    var img = document.createElement('img');
    img.alt = alt || 'Image sent by the bot';
    img.addEventListener('load', scrollDown);
    img.src = src;
    parent.appendChild(img);
  }
  function addChips(parent, buttons) {
    var group = document.createElement('div');
    group.className = 'chips';
    group.setAttribute('role', 'group');
    group.setAttribute('aria-label', 'Suggested replies');
    buttons.forEach(function (button) {
      if (!button || typeof button !== 'object') return;
      var title = String(button.title != null ? button.title : button.payload);
      if (typeof button.url === 'string' && /^https?:/i.test(button.url)) {
        var link = document.createElement('a');
        link.className = 'chip';
        link.href = button.url;
        link.target = '_blank';
        link.rel = 'noopener noreferrer';
        link.textContent = title;
        group.appendChild(link);
        return;
      }
      var chip = document.createElement('button');
      chip.type = 'button';
      chip.className = 'chip';
      chip.textContent = title;
      chip.addEventListener('click', function () {
        var payload = typeof button.payload === 'string' && button.payload !== '' ? button.payload : title;
        if (send(payload, title)) {
          Array.prototype.forEach.call(group.querySelectorAll('button'), function (b) { b.disabled = true; });
          chip.setAttribute('aria-pressed', 'true');
          input.focus();
        }
      });
      group.appendChild(chip);
    });
    parent.appendChild(group);
    scrollDown();
  }
  function addCards(elements) {
    (Array.isArray(elements) ? elements : [elements]).forEach(function (element) {
      if (!element || typeof element !== 'object') return;
      var li = addItem('bot');
      var card = document.createElement('div');
      card.className = 'card';
      if (typeof element.image_url === 'string') addImage(card, element.image_url, element.title ? String(element.title) : '');
      var title = document.createElement('strong');
      title.textContent = String(element.title || '');
      card.appendChild(title);
      if (element.subtitle) { var sub = document.createElement('span'); sub.textContent = String(element.subtitle); card.appendChild(sub); }
      li.appendChild(card);
      if (Array.isArray(element.buttons) && element.buttons.length > 0) addChips(li, element.buttons);
      scrollDown();
    });
  }
  function render(message) {
    if (typeof message === 'string') { addText('bot', message); return; }
    if (!message || typeof message !== 'object') return;
    var shown = false;
    var li;
    if (typeof message.text === 'string' && message.text !== '') { li = addText('bot', message.text); shown = true; }
    var replies = Array.isArray(message.quick_replies) ? message.quick_replies : Array.isArray(message.buttons) ? message.buttons : [];
    if (replies.length > 0) { addChips(li || addItem('bot'), replies); shown = true; }
    var attachment = message.attachment;
    if (attachment && typeof attachment === 'object') {
      var payload = attachment.payload || {};
      if (attachment.type === 'image' && typeof payload.src === 'string') { addImage(addItem('bot'), payload.src); shown = true; }
      else if (attachment.type === 'template' && payload.elements) { addCards(payload.elements); shown = true; }
    }
    if (typeof message.image === 'string') { addImage(addItem('bot'), message.image); shown = true; }
    if (!shown) addText('bot', JSON.stringify(message));
  }

  if (typeof window.io !== 'function') {
    setStatus('offline', 'Could not load the chat client');
    input.disabled = true;
    return;
  }
  var socket = window.io(config.namespace, { path: config.path });

  function requestSession() {
    socket.emit('session_request', sessionId ? { session_id: sessionId } : {});
  }
  // Messages typed before the session is confirmed wait for it (with session_persistence the server needs the id).
  var pending = [];
  function send(text, shown) {
    text = String(text).trim();
    if (text === '') return false;
    addText('user', shown || text);
    if (sessionId) socket.emit(config.userMessageEvt, { message: text, session_id: sessionId });
    else pending.push(text);
    return true;
  }

  setStatus('connecting', 'Connecting\\u2026');
  socket.on('connect', function () { setStatus('connected', 'Connected'); requestSession(); });
  socket.on('session_confirm', function (id) {
    if (typeof id !== 'string' || id === '') return;
    sessionId = id;
    writeSession(id);
    root.setAttribute('data-session-id', id);
    pending.splice(0).forEach(function (text) { socket.emit(config.userMessageEvt, { message: text, session_id: id }); });
  });
  socket.on(config.botMessageEvt, render);
  socket.on('error', function (problem) { addText('system', 'The server refused that: ' + (problem && problem.error ? problem.error : 'unknown error')); });
  // Socket.IO reconnects by itself after a lost connection, but not after "io server disconnect", which a server
  // that disconnects its clients as it shuts down sends (this one did once): reconnect then too, waiting longer
  // each time it comes again within 30 s of a connection, so a server that keeps refusing is not hammered.
  var kicks = 0;
  var kickReset;
  socket.on('connect', function () { clearTimeout(kickReset); kickReset = setTimeout(function () { kicks = 0; }, 30000); });
  socket.on('disconnect', function (reason) {
    clearTimeout(kickReset);
    if (reason === 'io client disconnect') { setStatus('offline', 'Disconnected'); return; }
    setStatus('reconnecting', 'Reconnecting\\u2026');
    if (reason === 'io server disconnect') {
      var delay = Math.min(30000, 1000 * Math.pow(2, kicks++)) * (0.5 + Math.random() / 2);
      setTimeout(function () { if (!socket.connected) socket.connect(); }, delay);
    }
  });
  socket.on('connect_error', function () { setStatus('reconnecting', 'Reconnecting\\u2026'); });
  socket.io.on('reconnect_attempt', function (attempt) { setStatus('reconnecting', 'Reconnecting\\u2026 (attempt ' + attempt + ')'); });

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    if (send(input.value)) input.value = '';
    input.focus();
  });
  newChat.addEventListener('click', function () {
    sessionId = undefined;
    writeSession(undefined);
    root.removeAttribute('data-session-id');
    while (log.firstChild) log.removeChild(log.firstChild);
    if (socket.connected) requestSession();
    input.focus();
  });
  input.focus();
})();
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

const SCRIPT_HASH = sha256(SCRIPT);
const STYLE_HASH = sha256(STYLE);

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The page with `{config}` filled in (see `renderWebchat`). */
export const WEBCHAT_HTML = `<!doctype html>
<html lang="en" data-connection="connecting">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="switchboard-webchat" content="{config}">
<title>{title}</title>
<style>${STYLE}</style>
</head>
<body>
<div class="app">
  <header>
    <h1>{title}</h1>
    <p id="status" role="status" aria-live="polite">Connecting…</p>
    <button type="button" id="new-chat">New chat</button>
  </header>
  <p id="banner" aria-hidden="true">Connection lost. Reconnecting… Messages you send now are delivered once it is back.</p>
  <ol id="log" role="log" aria-live="polite" aria-label="Conversation" tabindex="0"></ol>
  <form id="composer" autocomplete="off">
    <label for="message" class="sr-only">Your message</label>
    <input id="message" name="message" type="text" placeholder="Type a message…" enterkeyhint="send" maxlength="2000" required>
    <button id="send" type="submit">Send</button>
  </form>
</div>
<script src="{clientScript}"></script>
<script>${SCRIPT}</script>
</body>
</html>
`;

/**
 * The page for one channel's settings, and the Content-Security-Policy to serve it with: only the inline script and
 * style (by hash) and the Socket.IO client from this origin run; images may come from anywhere (bots send URLs).
 */
export function renderWebchat(config: WebchatConfig): { html: string; csp: string } {
  const title = config.title ?? 'Chat with the bot';
  const values: Record<string, string> = {
    config: escapeHtml(JSON.stringify({ path: config.path, namespace: config.namespace, userMessageEvt: config.userMessageEvt, botMessageEvt: config.botMessageEvt })),
    title: escapeHtml(title),
    clientScript: escapeHtml(`${config.path}/socket.io.min.js`),
  };
  const html = WEBCHAT_HTML.replace(/\{(config|title|clientScript)\}/g, (_, key: string) => values[key]!);
  const csp = [
    "default-src 'none'",
    `script-src 'self' ${SCRIPT_HASH}`,
    `style-src ${STYLE_HASH}`,
    'img-src * data: blob:',
    "connect-src 'self' ws: wss:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'self'",
  ].join('; ');
  return { html, csp };
}
