// The version `hmmsim --version` prints: package.json's, read at run time, so that it cannot
// drift from the package. The path is the same from src/cli/ (tsx) and from dist/cli/ (built).

import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
