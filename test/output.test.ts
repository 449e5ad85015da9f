import test from 'ava';
import { splitText } from 'switchboard';

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
