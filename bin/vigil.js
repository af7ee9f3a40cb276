#!/usr/bin/env node
// The `vigil` command. Resolves the built code relative to this file (its real path, so a global
// install's symlink, `npm link` and `node /path/to/bin/vigil.js` all work from any directory).
const main = await import('../dist/src/cli/main.js').then(
  (m) => m.main,
  (err) => {
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli/main.js')) {
      console.error(`vigil: the built code is missing (${new URL('../dist/', import.meta.url).pathname}): run \`npm run build\` in the vigil directory`);
      process.exit(2);
    }
    throw err;
  },
);
main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => { console.error(err); process.exitCode = 2; });
