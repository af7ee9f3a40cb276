// Compiles grammar/*.ne into src/dsl/generated/*.ts with nearleyc (run by `npm run build`,
// which `npm install` runs through `prepare`). The generated files are not committed.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const nearleyc = join(dirname(require.resolve('nearley/package.json')), 'bin', 'nearleyc.js');
const outDir = join(root, 'src', 'dsl', 'generated');
mkdirSync(outDir, { recursive: true });
for (const file of readdirSync(join(root, 'grammar'))) {
  if (!file.endsWith('.ne')) continue;
  const out = join(outDir, basename(file, '.ne') + '.ts');
  execFileSync(process.execPath, [nearleyc, join(root, 'grammar', file), '-o', out], { stdio: 'inherit' });
}
