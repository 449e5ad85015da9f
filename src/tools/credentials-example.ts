/**
 * Renders `credentials.example.yml` from the built-in channels' credential schemas, so the documented keys can never
 * drift from the validated ones. `npm run docs:credentials` rewrites the file; a test checks it is current.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { builtinChannels, loadChannelClass } from '../loader.js';
import { describeCredentials, type KeyDoc } from '../schema.js';

function envName(channel: string, key: string): string {
  const name = key.toLowerCase().startsWith(`${channel.toLowerCase()}_`) ? key : `${channel}_${key}`;
  return name.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

function example(channel: string, doc: KeyDoc): string {
  if (doc.type === 'object' && doc.secret) return `{username: "<username>", password: \${${envName(channel, doc.key)}_PASSWORD}}`;
  if (doc.type === 'record' && doc.secret) return `{"<id>": \${${envName(channel, doc.key)}_<ID>}}`;
  if (doc.secret) return `\${${envName(channel, doc.key)}}`;
  if (doc.default !== undefined) return JSON.stringify(doc.default);
  if (doc.type === 'boolean') return 'false';
  if (doc.type === 'number' || doc.type === 'int') return '0';
  if (doc.type === 'object' || doc.type === 'record') return '{}';
  if (doc.type === 'array') return '[]';
  return JSON.stringify(`<${doc.key}>`);
}

function describe(doc: KeyDoc): string {
  const tags = [
    doc.required ? 'required' : doc.verification ? 'required unless allow_unverified: true' : 'optional',
    ...(doc.secret ? ['secret'] : []),
  ];
  return `${tags.join(', ')}${doc.description ? ` — ${doc.description}` : ''}`;
}

/** The text of credentials.example.yml. */
export async function renderCredentialsExample(): Promise<string> {
  const lines = [
    '# Every built-in channel and its credentials keys. Generated from the channels\' schemas by',
    '# `npm run docs:credentials`; do not edit by hand.',
    '#',
    '# Copy the sections you need into credentials.yml and uncomment them. Keys are Rasa\'s, so a Rasa',
    '# credentials.yml works as it is. Any value may be ${ENV_VAR} or ${ENV_VAR:-default}: keep secrets',
    '# in the environment. A section may name its channel with `channel: SPEC`, its key then being only',
    '# the URL prefix (/webhooks/<key>/), to mount one channel several times.',
    '',
  ];
  for (const name of builtinChannels()) {
    const ChannelClass = (await loadChannelClass(name)) as { credentials?: Parameters<typeof describeCredentials>[0]; description?: string };
    const docs = describeCredentials(ChannelClass.credentials);
    const active = name === 'rest';
    const comment = active ? '' : '# ';
    lines.push(`# --- ${name}${ChannelClass.description ? `: ${ChannelClass.description}` : ''}`);
    lines.push(`# routes under /webhooks/${name}/`);
    lines.push(`${comment}${name}:${docs.length === 0 ? '  # no keys' : ''}`);
    for (const doc of docs) {
      const value = example(name, doc);
      lines.push(`${comment}  ${doc.required || doc.verification ? '' : '# '}${doc.key}: ${value}`.padEnd(60) + `  # ${describe(doc)}`);
    }
    if (docs.some((d) => d.verification)) {
      lines.push(`${comment}  # allow_unverified: false`.padEnd(60) + '  # true accepts requests without verifying them (not for production)');
    }
    lines.push('');
  }
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = process.argv[2] ?? 'credentials.example.yml';
  writeFileSync(target, await renderCredentialsExample());
  process.stdout.write(`wrote ${target}\n`);
}
