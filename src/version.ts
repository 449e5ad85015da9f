import { readFileSync } from 'node:fs';

/** The package's version, read once from its package.json (dist/version.js → ../package.json). */
export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
