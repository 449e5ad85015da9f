import type { Context } from 'koa';

/**
 * The `Forwarded:` header (RFC 7239) as a list of elements, one per proxy, each a map of its parameters: names
 * lower-cased, quoted values unquoted. `for=192.0.2.60;proto=https;host="example.com:8443", for=198.51.100.17` →
 * `[{for: '192.0.2.60', proto: 'https', host: 'example.com:8443'}, {for: '198.51.100.17'}]`. Several headers read as
 * one list, in order. Pure and lenient: a malformed pair is skipped, never thrown about.
 */
export function parseForwarded(header: string | readonly string[] | undefined): Array<Record<string, string>> {
  if (header === undefined) return [];
  const text = typeof header === 'string' ? header : header.join(',');
  const elements: Array<Record<string, string>> = [];
  let element: Record<string, string> = {};
  let pair = '';
  let quoted = false;
  const endPair = () => {
    const separator = pair.indexOf('=');
    if (separator > 0) {
      const name = pair.slice(0, separator).trim().toLowerCase();
      let value = pair.slice(separator + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
      // The first occurrence of a parameter counts: a proxy may not repeat one (RFC 7239 §4).
      if (/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name) && !(name in element)) element[name] = value;
    }
    pair = '';
  };
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quoted) {
      pair += char;
      if (char === '\\' && i + 1 < text.length) pair += text[++i];
      else if (char === '"') quoted = false;
    } else if (char === '"') {
      quoted = true;
      pair += char;
    } else if (char === ';') {
      endPair();
    } else if (char === ',') {
      endPair();
      elements.push(element);
      element = {};
    } else {
      pair += char;
    }
  }
  endPair();
  elements.push(element);
  return elements.filter((e) => Object.keys(e).length > 0);
}

/** A `host` a proxy may name: `example.com`, `example.com:8443`, `[2001:db8::1]:8080`; nothing that would change the path. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+,;=-]+)(?::\d{1,5})?$/;

/**
 * The URL the client called, as a platform that signs URLs (Twilio) computed it. Without `--trust-proxy` (Koa's
 * `proxy` false, the default) every forwarded header is ignored: the connection's scheme, the `Host` header, the path
 * as received. With the host's proxy headers trusted (`proxy: true`), the scheme and host of the first element of `Forwarded:` (RFC 7239, `proto=` and `host=`),
 * each missing one taken from `X-Forwarded-Proto` / `X-Forwarded-Host` as Koa reads them, else from the connection
 * and the `Host` header. The path and query are the request's, byte for byte. Values that are not a scheme or a
 * host (a `/` in `host=`, `proto=javascript`) are ignored.
 */
export function publicUrl(ctx: Context): string {
  if (!ctx.app.proxy) return ctx.href;
  const first = parseForwarded(ctx.req.headers.forwarded)[0] ?? {};
  const proto = first.proto?.toLowerCase();
  const protocol = proto === 'http' || proto === 'https' ? proto : ctx.protocol;
  const host = first.host !== undefined && HOST.test(first.host) ? first.host : ctx.host;
  return `${protocol}://${host}${ctx.originalUrl}`;
}
