// Tests import the host's internals through the package's private subpath imports ("#src/*" → dist/*, see
// package.json "imports"), and the public API by the package's own name ("switchboard"), as a channel package would.
import test from 'ava';
import { UserMessage, DEFAULT_SENDER_ID } from '#src/message.js';

test('UserMessage trims its text and defaults the sender as Rasa does', (t) => {
  const message = new UserMessage({ text: '  hi there \n', senderId: null });
  t.is(message.text, 'hi there');
  t.is(message.senderId, DEFAULT_SENDER_ID);
  t.is(message.messageId, undefined);
  t.deepEqual(message.metadata, {});
});

test('UserMessage keeps the platform message id as a string', (t) => {
  const message = new UserMessage({ text: 'x', senderId: '42', messageId: '7' as string, inputChannel: 'rest' });
  t.is(message.messageId, '7');
  t.is(message.senderId, '42');
  t.is(message.inputChannel, 'rest');
});
