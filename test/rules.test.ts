// The rules bot: matching against the moodbot, payloads, answer shapes, and the validation of bot.yml files.
// Internals come through the package's private subpath imports ("#src/*" → dist/*, see package.json "imports").
import { deepStrictEqual } from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import test from 'ava';
import { ConfigError } from '#src/errors.js';
import { UserMessage, type BotMessage } from '#src/message.js';
import fc from 'fast-check';
import yaml from 'js-yaml';
import { credentialsSchema, parseCredentials, z } from '#src/schema.js';
import { RulesBot, defaultBotPath, parsePayload, tokenize } from '#src/bots/rules.js';
import { words, type Words } from '#src/bots/rules-match.js';

const moodbot = RulesBot.fromFile(defaultBotPath());

const say = (bot: RulesBot, text: string): Promise<BotMessage[]> =>
  bot.handle(new UserMessage({ text, senderId: 'tester' }));

const FALLBACK: BotMessage[] = [{ text: "Sorry, I didn't get that. Try saying hello." }];

// ---------------------------------------------------------------------------------------------------------------------
// The moodbot file

test('the default bot path is the moodbot file of the package', (t) => {
  const path = defaultBotPath();
  t.true(path.replaceAll('\\', '/').endsWith('/examples/moodbot/bot.yml'));
  t.true(existsSync(path));
});

test('the moodbot declares its intents in order', (t) => {
  t.deepEqual(moodbot.intents, [
    'greet',
    'goodbye',
    'affirm',
    'deny',
    'mood_great',
    'mood_unhappy',
    'bot_challenge',
  ]);
  t.is(moodbot.threshold, 0.65);
});

test('the moodbot greets with buttons whose payloads select intents', async (t) => {
  t.deepEqual(await say(moodbot, 'hello'), [
    {
      text: 'Hey! How are you?',
      buttons: [
        { title: 'great', payload: '/mood_great' },
        { title: 'sad', payload: '/mood_unhappy' },
      ],
    },
  ]);
});

test('the moodbot cheers up an unhappy user with three answers in order', async (t) => {
  t.deepEqual(await say(moodbot, 'I am sad'), [
    { text: 'Here is something to cheer you up:' },
    { image: 'https://i.imgur.com/nGF1K8f.jpg' },
    {
      text: 'Did that help you?',
      buttons: [
        { title: 'yes', payload: '/affirm' },
        { title: 'no', payload: '/deny' },
      ],
    },
  ]);
});

test('the moodbot answers each intent with its text', async (t) => {
  t.deepEqual(await say(moodbot, 'perfect'), [{ text: 'Great, carry on!' }]);
  t.deepEqual(await say(moodbot, 'of course'), [{ text: 'Great, carry on!' }]);
  t.deepEqual(await say(moodbot, 'no way'), [{ text: 'Bye' }]);
  t.deepEqual(await say(moodbot, 'see you later'), [{ text: 'Bye' }]);
  t.deepEqual(await say(moodbot, 'are you a bot?'), [{ text: 'I am a bot, powered by Switchboard.' }]);
  t.deepEqual(await say(moodbot, 'what is the capital of France?'), FALLBACK);
});

// ---------------------------------------------------------------------------------------------------------------------
// Matching

const MATCHES: Array<[text: string, intent: string | null, why: string]> = [
  ['hello', 'greet', 'exact'],
  ['good morning', 'greet', 'exact, two words'],
  ['HELLO THERE!!', 'greet', 'case and punctuation'],
  ['  Hey,   there... ', 'greet', 'spaces and punctuation'],
  ['there hello', 'greet', 'word order'],
  ['helo', 'greet', 'a typo (deletion)'],
  ['hallo', 'greet', 'a typo (substitution)'],
  ['good mornign', 'greet', 'a typo (swapped letters)'],
  ['goodmorning', 'greet', 'joined words'],
  ['Goodnight!', 'goodbye', 'joined words of "good night"'],
  ['good bye', 'goodbye', 'split words'],
  ['hey, how are you?', 'greet', 'an example with function words around it'],
  ['Bye!', 'goodbye', 'punctuation'],
  ['later see you', 'goodbye', 'word order'],
  ['sad I am', 'mood_unhappy', 'word order'],
  ["I'm so sad", 'mood_unhappy', 'apostrophe'],
  ['Im so sad', 'mood_unhappy', 'missing apostrophe'],
  ['I dont feel very well', 'mood_unhappy', 'negation without apostrophe'],
  ['my days were horrible', 'mood_unhappy', 'plural and a changed word'],
  ['I am disapointed', 'mood_unhappy', 'a typo in a long word'],
  ['I am feeling great', 'mood_great', 'an extra word'],
  ['wonderfull', 'mood_great', 'a typo (insertion)'],
  ['good', 'mood_great', 'closest to "so good"'],
  ['Are you a human?', 'bot_challenge', 'case'],
  ['are you human', 'bot_challenge', 'a missing article'],
  ['am i talking to a bot', 'bot_challenge', 'exact without "?"'],
  ['are you bots', 'bot_challenge', 'plural'],
  ['yes please', 'affirm', 'a function word added'],
  ['Y', 'affirm', 'one letter'],
  ['N', 'deny', 'one letter'],
  ['not really', 'deny', 'negation'],
  ['Café hello', 'greet', 'diacritics'],
  // Near misses: they share words with examples, but must get the fallback.
  ['are you a teapot?', null, 'shares only function words with "are you a bot?"'],
  ['I am a teapot', null, 'shares only function words with "I am sad"'],
  ['I am not great', null, 'a negated "I am great"'],
  ['I am not sad', null, 'a negated "I am sad"'],
  ['I feel very well', null, '"I don\'t feel very well" without its negation'],
  ['the weather is great today', null, 'one shared word in a longer sentence'],
  ['I am going to the store', null, 'shares "I am going to ... the" with an example'],
  ['good luck', null, 'one word of "so good"'],
  ['how are you', null, 'function words only'],
  ['sadness', null, 'a different word'],
  ['treat', null, 'one letter from "great", but not the first letter: not a typo'],
  ['what time is it?', null, 'unrelated'],
  ['', null, 'empty'],
  ['?!', null, 'punctuation only'],
];

for (const [text, intent, why] of MATCHES) {
  test(`"${text}" → ${intent ?? 'fallback'} (${why})`, (t) => {
    t.is(moodbot.intentOf(text), intent, JSON.stringify(moodbot.classify(text)));
  });
}

test('classify reports the best example and its score even below the threshold', (t) => {
  t.deepEqual(moodbot.classify('hello'), { intent: 'greet', example: 'hello', score: 1, accepted: true });
  const nearMiss = moodbot.classify('are you a teapot?');
  t.is(nearMiss.intent, 'bot_challenge');
  t.is(nearMiss.example, 'are you a bot?');
  t.true(nearMiss.score > 0 && nearMiss.score < moodbot.threshold);
  t.false(nearMiss.accepted);
  t.deepEqual(moodbot.classify('zzz'), { intent: null, example: null, score: 0, accepted: false });
});

test('ties go to the intent declared first in the file', (t) => {
  const file = (first: string, second: string): string => `
intents:
  ${first}:
    examples: [${first} apple]
    answers: [${first}]
  ${second}:
    examples: [${second} apple]
    answers: [${second}]
fallback: [sorry]
`;
  const redFirst = RulesBot.fromYaml(file('red', 'green'), 'bot.yml');
  const greenFirst = RulesBot.fromYaml(file('green', 'red'), 'bot.yml');
  t.is(redFirst.classify('apple').score, greenFirst.classify('apple').score);
  t.is(redFirst.intentOf('apple'), 'red');
  t.is(greenFirst.intentOf('apple'), 'green');
  t.is(redFirst.intentOf('green apple'), 'green');
});

test('the threshold of the file decides how close a match must be', (t) => {
  const file = (threshold: string): string =>
    `${threshold}\nintents:\n  greet:\n    examples: [hello]\n    answers: [hi]\nfallback: [sorry]\n`;
  t.is(RulesBot.fromYaml(file(''), 'bot.yml').intentOf('helo'), 'greet');
  t.is(RulesBot.fromYaml(file('threshold: 0.9'), 'bot.yml').intentOf('helo'), null);
  t.is(RulesBot.fromYaml(file('threshold: 0.9'), 'bot.yml').intentOf('Hello!'), 'greet');
});

test('tokenize lowercases and drops punctuation, diacritics and apostrophes', (t) => {
  t.deepEqual(tokenize("  Héllo, WORLD! I'm   über-fine… "), ['hello', 'world', 'im', 'uber', 'fine']);
  t.deepEqual(tokenize('?!'), []);
});

// ---------------------------------------------------------------------------------------------------------------------
// Payloads

test('parsePayload reads the intent of a Rasa payload and ignores entities and confidence', (t) => {
  t.is(parsePayload('/greet'), 'greet');
  t.is(parsePayload('/greet{"name": "Ada"}'), 'greet');
  t.is(parsePayload('/greet@0.9{"name": "Ada"}'), 'greet');
  t.is(parsePayload('greet'), null);
  t.is(parsePayload('/'), '');
});

test('a /intent payload selects its intent directly', async (t) => {
  t.deepEqual(await say(moodbot, '/mood_great'), [{ text: 'Great, carry on!' }]);
  t.deepEqual(await say(moodbot, '/deny'), [{ text: 'Bye' }]);
  t.deepEqual(await say(moodbot, '/bot_challenge'), [{ text: 'I am a bot, powered by Switchboard.' }]);
  t.is((await say(moodbot, '/mood_unhappy')).length, 3);
});

test('a /intent payload ignores its entities', async (t) => {
  t.deepEqual(await say(moodbot, '/affirm{"confirmed": true}'), [{ text: 'Great, carry on!' }]);
  t.deepEqual(await say(moodbot, '/goodbye@1.0'), [{ text: 'Bye' }]);
});

test('an unknown /intent, or a payload that is not a name, gets the fallback', async (t) => {
  t.deepEqual(await say(moodbot, '/order_pizza'), FALLBACK);
  t.deepEqual(await say(moodbot, '/Greet'), FALLBACK);
  t.deepEqual(await say(moodbot, '/'), FALLBACK);
  t.deepEqual(await say(moodbot, '/hello'), FALLBACK, 'a payload is an intent name, never matched as a phrase');
});

test('every button payload of the moodbot selects a declared intent', async (t) => {
  const payloads = [...(await say(moodbot, 'hi')), ...(await say(moodbot, 'sad'))]
    .flatMap((answer) => answer.buttons ?? [])
    .map((button) => button.payload!);
  t.deepEqual(payloads, ['/mood_great', '/mood_unhappy', '/affirm', '/deny']);
  for (const payload of payloads) t.not(moodbot.intentOf(payload), null, payload);
});

// ---------------------------------------------------------------------------------------------------------------------
// Answers

const ALL_KINDS = `
version: 1
intents:
  show:
    examples: [show me everything]
    answers:
      - text: "plain text"
      - just a string
      - text: pick one
        buttons:
          - {title: Yes, payload: /show}
          - title: Docs
            url: https://example.com/docs
            type: web_url
        button_type: vertical
      - text: quick
        quick_replies:
          - {title: red, payload: '/show{"color": "red"}'}
      - image: https://example.com/cat.png
      - elements:
          - title: Card
            subtitle: A card
            image_url: https://example.com/card.png
            buttons:
              - {title: Open, payload: /show}
          - title: Bare card
      - attachment: https://example.com/file.pdf
      - attachment:
          type: file
          payload: {url: https://example.com/file.pdf}
      - custom:
          blocks:
            - type: section
              text: {type: mrkdwn, text: "*bold*"}
          count: 3
          ok: true
          nothing: null
fallback:
  - text: |
      Sorry,
      what?
`;

test('every kind of answer round-trips from YAML', async (t) => {
  const bot = RulesBot.fromYaml(ALL_KINDS, 'all.yml');
  t.deepEqual(await say(bot, 'show me everything'), [
    { text: 'plain text' },
    { text: 'just a string' },
    {
      text: 'pick one',
      buttons: [
        { title: 'Yes', payload: '/show' },
        { title: 'Docs', url: 'https://example.com/docs', type: 'web_url' },
      ],
      button_type: 'vertical',
    },
    { text: 'quick', quick_replies: [{ title: 'red', payload: '/show{"color": "red"}' }] },
    { image: 'https://example.com/cat.png' },
    {
      elements: [
        {
          title: 'Card',
          subtitle: 'A card',
          image_url: 'https://example.com/card.png',
          buttons: [{ title: 'Open', payload: '/show' }],
        },
        { title: 'Bare card' },
      ],
    },
    { attachment: 'https://example.com/file.pdf' },
    { attachment: { type: 'file', payload: { url: 'https://example.com/file.pdf' } } },
    {
      custom: {
        blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '*bold*' } }],
        count: 3,
        ok: true,
        nothing: null,
      },
    },
  ]);
  t.deepEqual(await say(bot, 'something else'), [{ text: 'Sorry,\nwhat?\n' }]);
});

test('answers are fresh copies: mutating them does not change the bot', async (t) => {
  const first = await say(moodbot, 'hello');
  first[0]!.text = 'changed';
  first[0]!.buttons![0]!.title = 'changed';
  first[0]!.buttons!.pop();
  first.push({ text: 'added' });
  const fallback = await say(moodbot, 'qwerty');
  fallback[0]!.text = 'changed';

  t.deepEqual(await say(moodbot, 'hello'), [
    {
      text: 'Hey! How are you?',
      buttons: [
        { title: 'great', payload: '/mood_great' },
        { title: 'sad', payload: '/mood_unhappy' },
      ],
    },
  ]);
  t.deepEqual(await say(moodbot, 'qwerty'), FALLBACK);
});

test('answers shared through a YAML alias are still separate copies', async (t) => {
  const bot = RulesBot.fromYaml(
    `intents:
  a:
    examples: [alpha]
    answers: &same
      - {text: same, custom: {n: 1}}
  b:
    examples: [beta]
    answers: *same
fallback: [sorry]
`,
    'bot.yml',
  );
  const a = await say(bot, 'alpha');
  (a[0]!.custom as { n: number }).n = 2;
  t.deepEqual(await say(bot, 'beta'), [{ text: 'same', custom: { n: 1 } }]);
  t.deepEqual(await say(bot, 'alpha'), [{ text: 'same', custom: { n: 1 } }]);
});

test('a "__proto__" key of a custom payload stays a key of each copy, never a prototype', async (t) => {
  const bot = RulesBot.fromYaml(`intents:\n  a:\n    examples: [alpha]\n    answers:\n      - custom: {"__proto__": {polluted: true}}\nfallback: [sorry]\n`, 'bot.yml');
  for (let i = 0; i < 2; i += 1) {
    const custom = (await say(bot, 'alpha'))[0]!.custom as Record<string, unknown>;
    t.is(Object.getPrototypeOf(custom), Object.prototype);
    t.deepEqual(Object.keys(custom), ['__proto__']);
    t.is((custom as { polluted?: boolean }).polluted, undefined);
  }
});

test('an intent without examples is reachable through a button payload', async (t) => {
  const bot = RulesBot.fromYaml(
    `intents:
  menu:
    examples: [menu]
    answers:
      - text: Choose
        buttons: [{title: Hours, payload: /hours}]
  hours:
    answers: [We open at 9.]
fallback: [sorry]
`,
    'bot.yml',
  );
  t.deepEqual(await say(bot, '/hours'), [{ text: 'We open at 9.' }]);
  t.is(bot.intentOf('hours'), null);
});

// ---------------------------------------------------------------------------------------------------------------------
// Validation

const VALID_INTENT = '  greet:\n    examples: [hi]\n    answers: [{text: hey}]\n';

const INVALID: Array<[problem: string, yaml: string, message: string]> = [
  [
    'an unknown top-level field, with a suggestion',
    `version: 1\nintents:\n${VALID_INTENT}fallback: [{text: sorry}]\nintent: x\n`,
    'bot.yml:7: unknown key "intent" (did you mean "intents"?)',
  ],
  [
    'an unknown top-level field, without a suggestion',
    `intents:\n${VALID_INTENT}responses: {}\nfallback: [{text: sorry}]\n`,
    'bot.yml:5: unknown key "responses" (expected "version", "threshold", "intents", "fallback")',
  ],
  [
    'an unknown field in an intent',
    `intents:\n  greet:\n    examples: [hi]\n    answer:\n      - text: hey\nfallback: [{text: sorry}]\n`,
    'bot.yml:4: unknown key "intents.greet.answer" (did you mean "answers"?)',
  ],
  [
    'an intent with no answers',
    `intents:\n${VALID_INTENT}  bye:\n    examples: [bye]\nfallback: [{text: sorry}]\n`,
    'bot.yml:5: missing "intents.bye.answers"',
  ],
  [
    'an intent with an empty answer list',
    `intents:\n${VALID_INTENT}  bye:\n    examples: [bye]\n    answers: []\nfallback: [{text: sorry}]\n`,
    'bot.yml:7: "intents.bye.answers": is empty',
  ],
  [
    'buttons that are not a list',
    `intents:
  greet:
    examples:
      - hi
    answers:
      - text: hey
      - text: "how are you?"

        buttons: {title: great, payload: /greet}
fallback:
  - text: sorry
`,
    'bot.yml:9: "intents.greet.answers.1.buttons" must be a list (got a mapping)',
  ],
  [
    'a button without a title',
    `intents:
  greet:
    examples: [hi]
    answers:
      - text: hey
        buttons:
          - title: a
            payload: /greet
          - payload: /greet
fallback: [{text: sorry}]
`,
    'bot.yml:9: missing "intents.greet.answers.0.buttons.1.title"',
  ],
  [
    'a button without a title, in a flow list over two lines',
    `intents:
  greet:
    examples: [hi]
    answers:
      - text: hey
        buttons: [{title: a, payload: /greet},
           {payload: /greet}]
fallback: [{text: sorry}]
`,
    'bot.yml:7: missing "intents.greet.answers.0.buttons.1.title"',
  ],
  [
    'a text that is not a string',
    `intents:
  greet:
    examples: [hi]
    answers:
      - text: hey
      -   # an image and a number
        image: https://example.com/a.png
        text: 42
fallback: [{text: sorry}]
`,
    'bot.yml:8: "intents.greet.answers.1.text" must be a string (got number 42)',
  ],
  [
    'an unknown key in an answer',
    `intents:\n  greet:\n    examples: [hi]\n    answers:\n      - text: hey\n        buttonz: []\nfallback: [sorry]\n`,
    'bot.yml:6: unknown key "intents.greet.answers.0.buttonz" (did you mean "buttons"?)',
  ],
  [
    'an answer with nothing to send',
    `intents:\n  greet:\n    examples: [hi]\n    answers:\n      - button_type: inline\nfallback: [sorry]\n`,
    'bot.yml:5: "intents.greet.answers.0": has nothing to send: give "text", "image", "buttons", "quick_replies", ' +
      '"elements", "attachment" or "custom"',
  ],
  [
    'a bad button deep in the fallback',
    `intents:
  greet:
    examples: [hi]
    answers: [hey]
fallback:
  - sorry
  - elements:
      - title: a
        buttons:
          - title: b
            payload: /greet
            extra: 1
`,
    'bot.yml:12: unknown key "fallback.1.elements.0.buttons.0.extra" (expected "title", "payload", "url", "type")',
  ],
  [
    'a payload naming no intent',
    `intents:
  greet:
    examples: [hi]
    answers:
      - text: hey
        quick_replies:
          - {title: x, payload: /gret}
fallback: [sorry]
`,
    'bot.yml:7: "intents.greet.answers.0.quick_replies.0.payload": "/gret" names no intent of this file',
  ],
  [
    'an intent without examples that nothing reaches',
    `intents:\n${VALID_INTENT}  lonely:\n    answers: [hey]\nfallback: [sorry]\n`,
    'bot.yml:5: "intents.lonely": has no "examples", and no button or quick reply of this file has the payload "/lonely"',
  ],
  [
    'the same example in two intents',
    `intents:\n  greet:\n    examples: [hi, hello there]\n    answers: [hey]\n  other:\n    examples:\n` +
      `      - There, hello!\n    answers: [hey]\nfallback: [sorry]\n`,
    'bot.yml:7: "intents.other.examples.0": "There, hello!" is also an example of intent "greet" (line 3)',
  ],
  [
    'an example that YAML reads as a boolean',
    `intents:\n  greet:\n    examples:\n      - hi\n      - true\n    answers: [hey]\nfallback: [sorry]\n`,
    'bot.yml:5: "intents.greet.examples.1" must be a string (got boolean true)',
  ],
  [
    'an example without words',
    `intents:\n  greet:\n    examples: [hi, "?!"]\n    answers: [hey]\nfallback: [sorry]\n`,
    'bot.yml:3: "intents.greet.examples.1": "?!" has no words to match',
  ],
  [
    'an intent name with a space',
    `intents:\n${VALID_INTENT}  say hi:\n    examples: [hey]\n    answers: [hey]\nfallback: [sorry]\n`,
    'bot.yml:5: "intents.say hi": is not an intent name: use letters, digits, "_", "-" and "."',
  ],
  [
    'a threshold of 0',
    `threshold: 0\nintents:\n${VALID_INTENT}fallback: [sorry]\n`,
    'bot.yml:1: "threshold": must be above 0 and at most 1',
  ],
  [
    'a threshold that is not a number',
    `threshold: high\nintents:\n${VALID_INTENT}fallback: [sorry]\n`,
    'bot.yml:1: "threshold" must be a number (got string "high")',
  ],
  [
    'a quick reply without a payload',
    `intents:\n  greet:\n    examples: [hi]\n    answers:\n      - text: hey\n        quick_replies:\n          - {title: x}\n` +
      `fallback: [sorry]\n`,
    'bot.yml:7: missing "intents.greet.answers.0.quick_replies.0.payload"',
  ],
  [
    'a button with neither payload nor url',
    `intents:\n  greet:\n    examples: [hi]\n    answers:\n      - text: hey\n        buttons:\n          - {title: x}\n` +
      `fallback: [sorry]\n`,
    'bot.yml:7: "intents.greet.answers.0.buttons.0": has no "payload" (or "url" for a link button)',
  ],
  [
    'a card without a title',
    `intents:\n${VALID_INTENT}fallback:\n  - elements:\n      - subtitle: no title\n`,
    'bot.yml:7: missing "fallback.0.elements.0.title"',
  ],
  [
    'a blank text',
    `intents:\n${VALID_INTENT}fallback: ["  "]\n`,
    'bot.yml:5: "fallback.0.text": is empty',
  ],
  [
    'an empty custom payload',
    `intents:\n${VALID_INTENT}fallback:\n  - custom:\n`,
    'bot.yml:6: "fallback.0.custom": is empty',
  ],
  [
    'a custom payload that is not JSON',
    `intents:\n${VALID_INTENT}fallback:\n  - custom: {n: .inf}\n`,
    'bot.yml:6: "fallback.0.custom": must be JSON (no .inf or .nan)',
  ],
  [
    'answers left empty',
    `intents:\n${VALID_INTENT}  bye:\n    examples: [bye]\n    answers:\nfallback: [sorry]\n`,
    'bot.yml:7: "intents.bye.answers" must be a list (got null)',
  ],
  ['no intents at all', `intents: {}\nfallback: [sorry]\n`, 'bot.yml:1: "intents": is empty'],
  ['intents as a list', `intents: [greet]\nfallback: [sorry]\n`, 'bot.yml:1: "intents" must be a mapping (got a list)'],
  ['a missing fallback', `intents:\n${VALID_INTENT}`, 'bot.yml:1: missing "fallback"'],
  ['missing intents', `fallback: [sorry]\n`, 'bot.yml:1: missing "intents"'],
  ['an empty file', '', 'bot.yml:1: the file is empty'],
  ['a list instead of a mapping', '- hello\n', 'bot.yml:1: the file must be a mapping (got a list)'],
  [
    'an unsupported version',
    `version: 2\nintents:\n${VALID_INTENT}fallback: [sorry]\n`,
    'bot.yml:1: "version": must be 1',
  ],
  [
    'a threshold out of range',
    `intents:\n${VALID_INTENT}threshold: 2\nfallback: [sorry]\n`,
    'bot.yml:5: "threshold": must be above 0 and at most 1',
  ],
  [
    'Windows line endings',
    'intents:\r\n  greet:\r\n    examples: [hi]\r\n    answers:\r\n      - text: 5\r\nfallback: [sorry]\r\n',
    'bot.yml:5: "intents.greet.answers.0.text" must be a string (got number 5)',
  ],
  // YAML syntax errors: file:line:column from js-yaml's mark.
  [
    'broken YAML: an unclosed flow list',
    `intents:\n  greet:\n    examples: [hi\n    answers: x\n`,
    'bot.yml:4:5: missed comma between flow collection entries',
  ],
  [
    'broken YAML: bad indentation',
    `intents:\n  greet:\n     examples: [hi]\n    answers: x\n`,
    'bot.yml:4:5: bad indentation of a mapping entry',
  ],
  [
    'broken YAML: a duplicated key',
    `intents:\n  greet:\n    examples: [hi]\n    examples: [hello]\n`,
    'bot.yml:4:5: duplicated mapping key',
  ],
];

for (const [problem, yaml, message] of INVALID) {
  test(`rejects ${problem}`, (t) => {
    const error = t.throws(() => RulesBot.fromYaml(yaml, 'bot.yml'), { instanceOf: ConfigError });
    t.is(error?.message, message);
  });
}

// docs/rules-bot.md: its format example is a working bot, and each error it shows is one that a case above produces.
const RULES_DOC = readFileSync(new URL('../../docs/rules-bot.md', import.meta.url), 'utf8');

test('the format example of docs/rules-bot.md loads and answers as described', async (t) => {
  const example = /```yaml\n([\s\S]*?)```/.exec(RULES_DOC)?.[1];
  t.truthy(example);
  const bot = RulesBot.fromYaml(example!, 'docs/rules-bot.md');
  t.is(bot.threshold, 0.65);
  t.is((await say(bot, 'Good morning!'))[0]?.text, 'Hey! How are you?');
  t.deepEqual(await say(bot, '/mood_great'), [{ text: 'Great, carry on!' }]);
  t.deepEqual(await say(bot, 'I am not good'), [{ text: 'Here is something to cheer you up:' }, { image: 'https://i.imgur.com/nGF1K8f.jpg' }]);
  t.deepEqual(await say(bot, 'what?'), [{ text: "Sorry, I didn't get that. Try saying hello." }]);
});

test('every error message shown in docs/rules-bot.md is one the bot gives', (t) => {
  const validation = RULES_DOC.slice(RULES_DOC.indexOf('### Validation'));
  const shown = /```\n([\s\S]*?)```/.exec(validation)![1]!.trim().split('\n');
  t.true(shown.length >= 5);
  const given = new Set(INVALID.map(([, , message]) => message));
  for (const message of shown) t.true(given.has(message), message);
});

test('error messages name the file as given', (t) => {
  t.throws(() => RulesBot.fromYaml('intents: [\n', 'bots/shop.yml'), {
    instanceOf: ConfigError,
    message: 'bots/shop.yml:2:1: unexpected end of the stream within a flow collection',
  });
  t.throws(() => RulesBot.fromFile('/nonexistent/bot.yml'), {
    instanceOf: ConfigError,
    message: '/nonexistent/bot.yml: cannot read the bot file: no such file',
  });
});

test('a bot file error is worded like a credentials error, after the file, the line and the key path', (t) => {
  const credentials = t.throws(() => parseCredentials(credentialsSchema({ token: z.string() }), { token: [42] }));
  const bot = t.throws(() =>
    RulesBot.fromYaml('intents:\n  greet:\n    examples: [hi]\n    answers: [{text: [42]}]\nfallback: [sorry]\n', 'bot.yml'),
  );
  t.is(credentials?.message, '"token" must be a string (got a list)');
  t.is(bot?.message, 'bot.yml:4: "intents.greet.answers.0.text" must be a string (got a list)');
});

// ---------------------------------------------------------------------------------------------------------------------
// The compiled matcher against the algorithm as docs/rules-bot.md states it, written plainly (per message, every
// example, every pair of words), on random messages made of the moodbot's words, typos of them and other words.

function plainTokenize(text: string): string[] {
  return text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/['’‘`´]/g, '')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim()
    .split(' ')
    .filter((token) => token !== '');
}

function plainWordSimilarity(a: string, b: string): number {
  const [short, long] = a.length < b.length ? [a, b] : [b, a];
  if (a === b || (short.length >= 3 && (long === `${short}s` || long === `${short}es`))) return 1;
  if (Math.min(a.length, b.length) < 4 || a[0] !== b[0] || Math.abs(a.length - b.length) > 1) return 0;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i += 1;
  const oneEdit =
    a.length === b.length
      ? a.slice(i + 1) === b.slice(i + 1) || (a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2))
      : a.length > b.length
        ? a.slice(i + 1) === b.slice(i)
        : a.slice(i) === b.slice(i + 1);
  return oneEdit ? 0.8 : 0;
}

function plainSimilarity(text: Words, example: Words): number {
  if (text.tokens.length === 0 || example.tokens.length === 0) return 0;
  if (text.joined === example.joined) return 1;
  if (text.negated !== example.negated) return 0;
  const used = text.tokens.map(() => false);
  let shared = 0;
  example.tokens.forEach((exampleToken, i) => {
    let best = 0;
    let bestIndex = -1;
    text.tokens.forEach((textToken, j) => {
      const s = used[j] ? 0 : plainWordSimilarity(exampleToken, textToken);
      if (s > best) [best, bestIndex] = [s, j];
    });
    if (bestIndex >= 0) {
      used[bestIndex] = true;
      shared += best * (example.weights[i]! + text.weights[bestIndex]!);
    }
  });
  return shared / (text.total + example.total);
}

const moodbotFile = yaml.load(readFileSync(defaultBotPath(), 'utf8')) as { intents: Record<string, { examples: string[] }> };
const moodbotExamples = Object.entries(moodbotFile.intents).flatMap(([intent, spec]) => spec.examples.map((text) => ({ intent, text })));

function plainClassify(text: string) {
  const message = words(text);
  let best = { intent: null as string | null, example: null as string | null, score: 0, accepted: false };
  for (const { intent, text: example } of moodbotExamples) {
    const score = plainSimilarity(message, words(example));
    if (score > best.score) best = { intent, example, score, accepted: false };
  }
  best.accepted = best.intent !== null && best.score >= moodbot.threshold;
  return best;
}

test('tokenize gives the words of the plain definition, for ASCII and other text', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary-ascii' }), fc.string({ unit: 'grapheme' }), fc.string()), (text) => {
        deepStrictEqual(tokenize(text), plainTokenize(text));
      }),
      { seed: 20261202, numRuns: 3000 },
    ),
  );
});

test('the compiled matcher scores exactly as the plain algorithm, on random messages', (t) => {
  const vocabulary = [...new Set(moodbotExamples.flatMap(({ text }) => plainTokenize(text)))];
  const typo = fc
    .tuple(fc.constantFrom(...vocabulary), fc.nat(), fc.constantFrom('', 'e', 's', 'x'), fc.constantFrom('drop', 'swap', 'add', 'change'))
    .map(([word, at, letter, kind]) => {
      const i = word.length > 1 ? 1 + (at % (word.length - 1)) : 0;
      if (kind === 'drop') return word.slice(0, i) + word.slice(i + 1);
      if (kind === 'swap') return word.slice(0, i - 1) + (word[i] ?? '') + (word[i - 1] ?? '') + word.slice(i + 1);
      if (kind === 'add') return word.slice(0, i) + letter + word.slice(i);
      return word.slice(0, i) + (letter || 'q') + word.slice(i + 1);
    });
  const word = fc.oneof(fc.constantFrom(...vocabulary, 'not', 'dont', 'teapot', 'weather', 'Hello', "I'm"), typo, fc.string({ maxLength: 6 }));
  const message = fc
    .array(fc.tuple(word, fc.constantFrom(' ', ', ', '! ', '', '  ')), { minLength: 1, maxLength: 6 })
    .map((parts) => parts.map(([w, separator]) => w + separator).join(''));
  t.notThrows(() =>
    fc.assert(
      fc.property(message, (text) => {
        deepStrictEqual(moodbot.classify(text), plainClassify(text), text);
      }),
      { seed: 20261202, numRuns: 3000 },
    ),
  );
});
