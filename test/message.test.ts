// Tests import the host's internals through the package's private subpath imports ("#src/*" → dist/*, see
// package.json "imports"), and the public API by the package's own name ("switchboard"), as a channel package would.
import test from 'ava';
import { UserMessage, DEFAULT_SENDER_ID, addressPart } from '#src/message.js';

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

test('UserMessage as data: toJSON leaves the live output out, fromJSON rebuilds the same message', (t) => {
  const live = { sendResponse: async () => undefined } as never;
  const message = new UserMessage({ text: 'hi', senderId: 'C1', output: live, replyTo: { channel: 'C1', thread_ts: '1.2' }, inputChannel: 'slack', messageId: 'm1', metadata: { ts: '1.2' } });
  const data = JSON.parse(JSON.stringify(message)) as Record<string, unknown>;
  t.false('output' in data);
  t.deepEqual(data, { text: 'hi', senderId: 'C1', inputChannel: 'slack', messageId: 'm1', metadata: { ts: '1.2' }, replyTo: { channel: 'C1', thread_ts: '1.2' }, traceId: message.traceId });
  const copy = UserMessage.fromJSON(data);
  t.deepEqual(copy.toJSON(), message.toJSON());
  t.is(copy.output, undefined);
  t.is(copy.traceId, message.traceId);
  // A message without an id or an address has neither key in its data.
  t.deepEqual(Object.keys(new UserMessage({ text: 'x' }).toJSON()).sort(), ['inputChannel', 'metadata', 'senderId', 'text', 'traceId']);
});

test('UserMessage.fromJSON refuses what is not a message, naming the field', (t) => {
  t.throws(() => UserMessage.fromJSON(null), { instanceOf: TypeError });
  t.throws(() => UserMessage.fromJSON([]), { instanceOf: TypeError });
  t.throws(() => UserMessage.fromJSON({ text: 'x', senderId: 1, inputChannel: 'rest' }), { message: /senderId/ });
  t.throws(() => UserMessage.fromJSON({ text: 'x', senderId: 'u', inputChannel: 'rest', replyTo: 'C1' }), { message: /replyTo/ });
  t.throws(() => UserMessage.fromJSON({ text: 'x', senderId: 'u', inputChannel: 'rest', metadata: [1] }), { message: /metadata/ });
  t.throws(() => UserMessage.fromJSON({ text: 'x', senderId: 'u', inputChannel: 'rest', messageId: 5 }), { message: /messageId/ });
});

test('addressPart reads one string of an address and refuses a missing or wrong one by name', (t) => {
  t.is(addressPart({ room: 'r1' }, 'room'), 'r1');
  t.is(addressPart({}, 'thread_ts', true), undefined);
  t.throws(() => addressPart({}, 'room'), { message: 'reply address without "room"' });
  t.throws(() => addressPart({ room: 7 }, 'room'), { message: 'reply address "room" is not a string' });
});
