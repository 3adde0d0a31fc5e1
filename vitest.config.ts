import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests and examples import 'hmmsim' and 'hmmsim/<subpath>' as a user would. Here they resolve
// to the sources (package.json's export target with dist/ -> src/ and .js -> .ts), as
// tsconfig.json's "paths" make them do for tsc and tsx; a consumer gets dist/ through "exports".
type Target = { import: string };
const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { exports: Record<string, Target | string> };
const alias = Object.entries(pkg.exports)
  .filter((e): e is [string, Target] => typeof e[1] === 'object')
  .map(([key, target]) => ({
    find: new RegExp(`^hmmsim${key === '.' ? '' : `/${key.slice(2)}`}$`),
    replacement: fileURLToPath(new URL(target.import.replace(/^\.\/dist\//, './src/').replace(/\.js$/, '.ts'), import.meta.url)),
  }));

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'threads',
  },
});
