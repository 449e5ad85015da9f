import test from 'ava';
import RestInput from '../../channels/rest/index.js';
import { runChannelCases } from '../harness.js';

const greet = [
  { text: 'Hey! How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }] },
];

runChannelCases(test, {
  channel: RestInput,
  credentials: {},
  cases: [
    {
      label: 'rest: health route',
      method: 'GET',
      path: '/',
      status: 200,
      response: { status: 'ok' },
    },
    {
      label: 'rest: a message is answered with the bot reply, recipient_id on each answer',
      body: { sender: 'alice', message: ' hello ' },
      answers: greet,
      status: 200,
      response: [{ recipient_id: 'alice', ...greet[0] }],
      received: [{ text: 'hello', senderId: 'alice', inputChannel: 'rest' }],
    },
    {
      label: 'rest: a multi-message reply comes back in order, every kind in Rasa shape',
      body: { sender: 'bob', message: 'sad' },
      answers: [
        { text: 'Here is something to cheer you up:' },
        { image: 'https://i.imgur.com/nGF1K8f.jpg' },
        { text: 'Did that help you?', quick_replies: [{ title: 'yes', payload: '/affirm' }] },
        { text: 'one\n\ntwo' },
        { custom: { kind: 'map', lat: 1 } },
        { attachment: { type: 'video', url: 'https://x.test/v.mp4' } },
        { elements: [{ title: 'Card', subtitle: 'sub', buttons: [{ title: 'go', payload: '/go' }] }] },
      ],
      status: 200,
      response: [
        { recipient_id: 'bob', text: 'Here is something to cheer you up:' },
        { recipient_id: 'bob', image: 'https://i.imgur.com/nGF1K8f.jpg' },
        { recipient_id: 'bob', text: 'Did that help you?', buttons: [{ title: 'yes', payload: '/affirm' }] },
        { recipient_id: 'bob', text: 'one' },
        { recipient_id: 'bob', text: 'two' },
        { recipient_id: 'bob', custom: { kind: 'map', lat: 1 } },
        { recipient_id: 'bob', attachment: { type: 'video', url: 'https://x.test/v.mp4' } },
        { recipient_id: 'bob', text: 'Card : sub', buttons: [{ title: 'go', payload: '/go' }] },
      ],
    },
    {
      label: 'rest: metadata and input_channel reach the bot',
      body: { sender: 'c', message: 'hi', metadata: { page: 'pricing' }, input_channel: 'website' },
      status: 200,
      received: [{ text: 'hi', senderId: 'c', inputChannel: 'website', metadata: { page: 'pricing' } }],
    },
    {
      label: 'rest: JSON posted with a form content type (curl -d) is still understood, as by Rasa',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '{"sender":"curl","message":"hello"}',
      status: 200,
      response: [{ recipient_id: 'curl', text: 'ok' }],
    },
    {
      label: 'rest: a bot with no answer gives an empty array',
      body: { sender: 'd', message: 'x' },
      answers: [],
      status: 200,
      response: [],
    },
    {
      label: 'rest: missing sender is a 400 naming the field',
      body: { message: 'hi' },
      status: 400,
      response: { error: 'missing "sender": the id of the user who sends the message' },
      received: [],
    },
    {
      label: 'rest: non-string message is a 400',
      body: { sender: 'a', message: 42 },
      status: 400,
      response: { error: '"message" must be a string' },
      received: [],
    },
    {
      label: 'rest: numeric sender is a 400',
      body: { sender: 7, message: 'hi' },
      status: 400,
      response: { error: '"sender" must be a non-empty string' },
    },
    {
      label: 'rest: metadata that is not an object is a 400',
      body: { sender: 'a', message: 'hi', metadata: [1] },
      status: 400,
      response: { error: '"metadata" must be a JSON object' },
    },
    {
      label: 'rest: malformed JSON is a 400, never a 500',
      headers: { 'content-type': 'application/json' },
      body: '{"sender": "a", "message": ',
      status: 400,
      response: { error: 'malformed JSON body' },
      received: [],
    },
    {
      label: 'rest: a JSON array body is a 400',
      body: '[1,2]',
      headers: { 'content-type': 'application/json' },
      status: 400,
      response: { error: 'expected a JSON object as the request body' },
    },
    {
      label: 'rest: GET on the webhook is 405',
      method: 'GET',
      status: 405,
      response: { error: 'method GET not allowed here' },
    },
  ],
});
