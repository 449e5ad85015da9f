import test, { type ExecutionContext } from 'ava';
import Koa from 'koa';
import type { AddressInfo } from 'node:net';
import { parseForwarded, publicUrl } from 'switchboard';

test('parseForwarded: RFC 7239 examples, elements in order, names lower-cased, quoted values unquoted', (t) => {
  t.deepEqual(parseForwarded('for="_gazonk"'), [{ for: '_gazonk' }]);
  t.deepEqual(parseForwarded('For="[2001:db8:cafe::17]:4711"'), [{ for: '[2001:db8:cafe::17]:4711' }]);
  t.deepEqual(parseForwarded('for=192.0.2.60;proto=http;by=203.0.113.43'), [{ for: '192.0.2.60', proto: 'http', by: '203.0.113.43' }]);
  t.deepEqual(parseForwarded('for=192.0.2.43, for=198.51.100.17'), [{ for: '192.0.2.43' }, { for: '198.51.100.17' }]);
  t.deepEqual(parseForwarded('proto=https;host="example.com:8443", proto=http;host=internal'), [
    { proto: 'https', host: 'example.com:8443' },
    { proto: 'http', host: 'internal' },
  ]);
  t.deepEqual(parseForwarded(['proto=https;host=a.example', 'host=b.example']), [{ proto: 'https', host: 'a.example' }, { host: 'b.example' }], 'several headers, one list');
});

test('parseForwarded: quoted commas, semicolons and escapes stay inside their value', (t) => {
  t.deepEqual(parseForwarded('for="a,b;c";host="x\\"y", host=z'), [{ for: 'a,b;c', host: 'x"y' }, { host: 'z' }]);
});

test('parseForwarded: lenient, never throws; malformed pairs are skipped, the first of a repeated name counts', (t) => {
  for (const header of ['', ',,,', ';;', '=x', 'host', '"unterminated', 'host="a', 'host=a;host=b', 'bad name=x;proto=https', '\u0000']) {
    t.notThrows(() => parseForwarded(header), JSON.stringify(header));
  }
  t.deepEqual(parseForwarded(undefined), []);
  t.deepEqual(parseForwarded(',,,'), []);
  t.deepEqual(parseForwarded('host=a;host=b'), [{ host: 'a' }]);
  t.deepEqual(parseForwarded('bad name=x;proto=https'), [{ proto: 'https' }]);
});

/** A bare Koa app answering `publicUrl(ctx)`, on port 0. */
async function serve(t: ExecutionContext, proxy: boolean): Promise<(path: string, headers?: Record<string, string>) => Promise<string>> {
  const app = new Koa({ proxy });
  app.use((ctx) => {
    ctx.body = publicUrl(ctx);
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return async (path, headers = {}) => (await fetch(`http://127.0.0.1:${port}${path}`, { headers })).text();
}

test('publicUrl: with proxy headers trusted, the first Forwarded element gives scheme and host; path and query as sent', async (t) => {
  const get = await serve(t, true);
  t.is(await get('/hook?a=1&b=%27', { forwarded: 'for=192.0.2.60;proto=https;host=example.com' }), 'https://example.com/hook?a=1&b=%27');
  t.is(await get('/hook', { forwarded: 'proto=HTTPS;host="example.com:8443", proto=http;host=lb.internal' }), 'https://example.com:8443/hook');
  t.is(await get('/hook', { forwarded: 'host="[2001:db8::1]:8080"' }), 'http://[2001:db8::1]:8080/hook', 'no proto: the connection\u2019s');
  t.is(await get('/hook', { forwarded: 'proto=https', 'x-forwarded-host': 'xf.example.com' }), 'https://xf.example.com/hook', 'no host: X-Forwarded-Host');
  t.is(await get('/hook', { forwarded: 'proto=https;host=fw.example.com', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'xf.example.com' }), 'https://fw.example.com/hook', 'Forwarded wins');
  t.is(await get('/hook', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'xf.example.com' }), 'https://xf.example.com/hook', 'only X-Forwarded-*: as Koa');
});

test('publicUrl: values that are not a scheme or a host are ignored', async (t) => {
  const get = await serve(t, true);
  const host = (await get('/hook')).replace('/hook', '');
  t.is(await get('/hook', { forwarded: 'proto=javascript;host="evil.example/path?"' }), `${host}/hook`);
  t.is(await get('/hook', { forwarded: 'host="a b"' }), `${host}/hook`);
  t.is(await get('/hook', { forwarded: 'host="user@evil.example"' }), `${host}/hook`);
});

test('publicUrl: without trusted proxy headers, Forwarded is ignored (the URL as received)', async (t) => {
  const get = await serve(t, false);
  t.regex(await get('/hook?x=1', { forwarded: 'proto=https;host=example.com' }), /^http:\/\/127\.0\.0\.1:\d+\/hook\?x=1$/);
  t.regex(await get('/hook', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'other-app.example.com' }), /^http:\/\/127\.0\.0\.1:\d+\/hook$/, 'nor X-Forwarded-*');
});
