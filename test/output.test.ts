import test from 'ava';
import { CollectingOutputChannel, paragraphs, splitText } from 'switchboard';
import { SocketIOOutput } from '../channels/socketio/output.js';

test('splitText cuts at the last whitespace before the limit: space, line break or tab', (t) => {
  t.deepEqual(splitText('aaa bbb ccc', 7), ['aaa bbb', 'ccc']);
  t.deepEqual(splitText('aaa\nbbb ccc', 5), ['aaa', 'bbb', 'ccc']);
  t.deepEqual(splitText('aaa\tbbbb', 6), ['aaa', 'bbbb']);
  t.deepEqual(splitText('short', 10), ['short']);
  t.deepEqual(splitText('', 10), []);
});

test('splitText cuts a word longer than the limit hard, never inside a surrogate pair', (t) => {
  t.deepEqual(splitText('abcdefghij', 4), ['abcd', 'efgh', 'ij']);
  const emoji = '😀'.repeat(5);
  const parts = splitText(emoji, 3);
  t.is(parts.join(''), emoji);
  t.true(parts.every((part) => part.length <= 3 && !/[\uD800-\uDBFF]$/.test(part)));
});

test('paragraphs: the whole text trimmed, cut at blank lines, each part keeping its own whitespace, as Rasa', (t) => {
  t.deepEqual(paragraphs('a \n\n b \n\nc'), ['a ', ' b ', 'c']);
  t.deepEqual(paragraphs('  one\n\ntwo  \n'), ['one', 'two']);
  // Only `\n\n` is a paragraph break, as in Rasa: a third newline stays with the next part.
  t.deepEqual(paragraphs('a\n\n\nb'), ['a', '\nb']);
  t.deepEqual(paragraphs('a\n \nb'), ['a\n \nb']);
  // Where Rasa would send an empty message, nothing is sent.
  t.deepEqual(paragraphs('a\n\n\n\nb'), ['a', 'b']);
  t.deepEqual(paragraphs(' \n\n '), []);
});

test('CollectingOutputChannel (rest) sends one answer per paragraph, whitespace kept', async (t) => {
  const output = new CollectingOutputChannel();
  await output.sendResponse('u', { text: 'a \n\n b \n\nc' });
  t.deepEqual(output.messages, [
    { recipient_id: 'u', text: 'a ' },
    { recipient_id: 'u', text: ' b ' },
    { recipient_id: 'u', text: 'c' },
  ]);
});

test('socket.io output splits text, and text with buttons, by the same paragraphs', async (t) => {
  const emitted: unknown[] = [];
  const output = new SocketIOOutput({ to: () => ({ emit: (_event: string, data: unknown) => emitted.push(data) }) }, 'bot_uttered');
  await output.sendResponse('s', { text: 'a \n\n b \n\nc' });
  await output.sendResponse('s', { text: 'x \n\n y ', buttons: [{ title: 'ok', payload: '/ok' }] });
  t.deepEqual(emitted, [
    { text: 'a ' },
    { text: ' b ' },
    { text: 'c' },
    { text: 'x ', quick_replies: [] },
    { text: ' y', quick_replies: [{ content_type: 'text', title: 'ok', payload: '/ok' }] },
  ]);
});
