// The `vigil` command: check, run, serve, help, --version. A thin shell over the compiler and
// the engine.

import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { renderDiagnostic } from '../core/diagnostics.js';
import { compileSources, type CompileOptions, type SourceFile } from '../compiler/rule.js';
import { parseUntil, renderSummary, replay } from './run.js';
import { renderFailure, runRuleTests } from './rule-tests.js';

const USAGE = `usage:
  vigil check [--strict] FILES...               compile rules; errors as file:line:col
                                                (--strict: warnings are errors too)
  vigil run RULES... --events FILE|- [--stream NAME] [--until TIME] [--deliver]
                                                evaluate rules over recorded NDJSON events
                                                (--until: time stops there, not at +∞)
  vigil test [FILES...]                         run the rules' tests (default: ./rules);
                                                exit 1 when one fails
  vigil serve [--host H] [--port P] [--data-dir D] [--rules-dir R] [--from-savepoint PATH] ...
                                                run the service (see README)
  vigil help [COMMAND]                          this text, or one command's
  vigil --version                               the version`;

/** `vigil help COMMAND`: one command in more words. */
const HELP: Record<string, string> = {
  check: `usage: vigil check [--strict] FILES...

Compiles rules files (a directory stands for its *.vigil files). Every error and warning is
printed as file:line:col with the line and a caret; a summary follows.
  --strict   warnings fail the check too
Exit: 0 no errors, 1 errors (or warnings with --strict), 2 usage error.`,
  run: `usage: vigil run RULES... --events FILE|- [--stream NAME] [--until TIME] [--deliver]

Evaluates rules over recorded NDJSON events (FILE, or - for standard input). Standard output
carries only records (alerts, late events), one JSON object per line; problems and a summary go
to standard error.
  --events FILE|-   the events, one JSON object per line
  --stream NAME     the stream of every line (else its "$stream" field, else the rules' one stream)
  --until TIME      time stops there (ISO-8601 with a zone, or epoch ms), not at +infinity
  --deliver         also deliver the alerts to their sinks (VIGIL_* settings)
Exit: 0, 1 on a rules error, 2 on a usage error.`,
  serve: `usage: vigil serve [flags]

Runs the service: the HTTP(S) API, MQTT ingest, alert delivery, state in the data dir.
Every setting is a VIGIL_* variable and a flag (a flag wins), e.g.
  --host H --port P --data-dir D --rules-dir R --api-token T
  --tls-cert FILE --tls-key FILE                  HTTPS (SIGHUP reloads them)
  --mqtt-url URL --mqtt-ca FILE --mqtt-cert FILE --mqtt-key FILE
  --smtp-url URL --smtp-ca FILE --mail-from ADDR
The full table: README, Configuration. SIGTERM/SIGINT stop cleanly.
Exit: 0 after a clean stop, 1 cannot start, 2 bad configuration.`,
  help: `usage: vigil help [COMMAND]

Prints the usage, or one command's (check, run, serve).`,
};

/** The version in the package.json next to the built code. */
export function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      const parent = dirname(dir);
      if (parent === dir) return 'unknown';
      dir = parent;
    }
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // `vigil COMMAND --help` is `vigil help COMMAND`.
  if (command !== undefined && HELP[command] !== undefined && (rest.includes('--help') || rest.includes('-h'))) return main(['help', command]);
  switch (command) {
    case 'check':
      return check(rest);
    case 'run':
      return run(rest);
    case 'test':
      return test(rest);
    case 'serve': {
      const { serve } = await import('./serve.js');
      return serve(rest);
    }
    case '--version':
    case '-v':
    case 'version':
      process.stdout.write(`vigil ${version()}\n`);
      return 0;
    case 'help':
    case '--help':
    case '-h': {
      const topic = rest[0];
      if (topic === undefined) {
        process.stdout.write(USAGE + '\n');
        return 0;
      }
      const text = HELP[topic];
      if (text === undefined) {
        process.stderr.write(`vigil help: no command '${topic}' (commands: ${Object.keys(HELP).join(', ')})\n`);
        return 2;
      }
      process.stdout.write(text + '\n');
      return 0;
    }
    case undefined:
      process.stdout.write(USAGE + '\n');
      return 2;
    default:
      process.stderr.write(`vigil: unknown command '${command}'\n${USAGE}\n`);
      return 2;
  }
}

/** Reads rules files; a directory stands for the `.vigil` files in it. */
export function readRuleFiles(paths: string[]): { files: SourceFile[]; errors: string[] } {
  const files: SourceFile[] = [];
  const errors: string[] = [];
  for (const p of paths) {
    try {
      if (statSync(p).isDirectory()) {
        for (const f of readdirSync(p).filter((n) => n.endsWith('.vigil')).sort()) {
          files.push({ file: join(p, f), text: readFileSync(join(p, f), 'utf8') });
        }
      } else files.push({ file: p, text: readFileSync(p, 'utf8') });
    } catch (err) {
      errors.push(`vigil: cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return { files, errors };
}

/** VIGIL_ENV_PREFIX for `vigil check` and `vigil run` (the service reads it through its configuration). */
function envPrefixSetting(): string | undefined {
  const v = process.env.VIGIL_ENV_PREFIX?.trim();
  return v ? v : undefined;
}

function check(args: string[]): number {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { strict: { type: 'boolean' } } });
  } catch (err) {
    process.stderr.write(`vigil check: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const paths = parsed.positionals;
  const strict = parsed.values.strict === true;
  if (paths.length === 0) {
    process.stderr.write('vigil check: name at least one rules file\n');
    return 2;
  }
  const { files, errors } = readRuleFiles(paths);
  for (const e of errors) process.stderr.write(e + '\n');
  const program = compileSources(files, { envPrefix: envPrefixSetting() });
  let nErrors = errors.length;
  let nWarnings = 0;
  for (const d of program.diagnostics) {
    if (d.severity === 'error') nErrors++;
    else nWarnings++;
    process.stderr.write(renderDiagnostic(d, program.sources.get(d.file)) + '\n');
  }
  // Every rule declared counts, compiled or not (a rule with an error is still a rule of the file).
  const total = program.ruleCount ?? program.rules.length;
  const refused = total - program.rules.length;
  const rules = `${total} rule(s)${refused > 0 ? ` (${refused} with errors)` : ''}`;
  const failed = nErrors > 0 || (strict && nWarnings > 0);
  const summary = `${files.length} file(s): ${rules}, ${program.streams.size} stream(s), ${nErrors} error(s), ${nWarnings} warning(s)${strict && nWarnings > 0 ? ' (--strict: warnings fail the check)' : ''}`;
  (failed ? process.stderr : process.stdout).write(summary + '\n');
  return failed ? 1 : 0;
}

/**
 * `vigil test [FILES...]`: compiles the files (default: the rules directory ./rules) and runs
 * every `test` block; one line per test, the failures with their position and the nearest
 * alerts, then `N passed, N failed` alone on a line. Exit 1 when a test fails or a file does
 * not compile, 2 on a usage error.
 */
function test(args: string[]): number {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: {} });
  } catch (err) {
    process.stderr.write(`vigil test: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const paths = parsed.positionals.length > 0 ? parsed.positionals : ['rules'];
  const { files, errors } = readRuleFiles(paths);
  // A NAME.test.vigil file named alone runs with the rules of NAME.vigil beside it.
  for (const f of [...files]) {
    if (!f.file.endsWith('.test.vigil')) continue;
    const sibling = join(dirname(f.file), basename(f.file, '.test.vigil') + '.vigil');
    if (!files.some((g) => g.file === sibling) && existsSync(sibling)) files.push({ file: sibling, text: readFileSync(sibling, 'utf8') });
  }
  for (const e of errors) process.stderr.write(e + '\n');
  if (errors.length > 0) return 1;
  const program = compileSources(files);
  for (const d of program.diagnostics) process.stderr.write(renderDiagnostic(d, program.sources.get(d.file)) + '\n');
  const nErrors = program.diagnostics.filter((d) => d.severity === 'error').length;
  if (nErrors > 0) {
    process.stderr.write(`vigil test: ${nErrors} error(s): no test was run\n`);
    return 1;
  }
  const tests = program.tests ?? [];
  if (tests.length === 0) process.stderr.write(`vigil test: no test in ${paths.join(', ')}\n`);
  const outcomes = runRuleTests(tests, program);
  let passed = 0;
  let failed = 0;
  const out: string[] = [];
  for (const o of outcomes) {
    if (o.passed) passed++;
    else failed++;
    out.push(`${o.passed ? 'ok  ' : 'FAIL'} ${o.file}:${o.line} ${JSON.stringify(o.title)}`);
    for (const f of o.failures) out.push(indent(renderFailure(f, program.sources.get(f.diagnostic.file))));
  }
  out.push(`${passed} passed, ${failed} failed`);
  process.stdout.write(out.join('\n') + '\n');
  return failed > 0 ? 1 : 0;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { events: { type: 'string' }, stream: { type: 'string' }, until: { type: 'string' }, deliver: { type: 'boolean' } },
    });
  } catch (err) {
    process.stderr.write(`vigil run: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (positionals.length === 0 || values.events === undefined) {
    process.stderr.write(`vigil run: name the rules files and --events FILE (or - for standard input)\n${USAGE}\n`);
    return 2;
  }
  let until: number | undefined;
  if (values.until !== undefined) {
    const t = parseUntil(values.until);
    if (t === null) {
      process.stderr.write(`vigil run: --until '${values.until}' is not a time: give ISO-8601 with a zone (2026-11-20T10:05:00Z) or epoch milliseconds\n`);
      return 2;
    }
    until = t;
  }
  const { files, errors } = readRuleFiles(positionals);
  for (const e of errors) process.stderr.write(e + '\n');
  if (errors.length > 0) return 1;
  const fromStdin = values.events === '-';
  let input: NodeJS.ReadableStream & { once(ev: string, fn: (...a: unknown[]) => void): unknown };
  try {
    const stream = fromStdin ? process.stdin : createReadStream(values.events);
    input = stream;
    await new Promise<void>((resolve, reject) => {
      if (fromStdin) return resolve();
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
  } catch (err) {
    process.stderr.write(`vigil run: cannot read ${values.events}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    return 1;
  }
  const out = process.stdout;
  let delivery: { onAlert: Parameters<typeof replay>[0]['onAlert']; finish: () => Promise<number> } | undefined;
  const compile: CompileOptions = { envPrefix: envPrefixSetting() };
  if (values.deliver) {
    const { createReplayDelivery, replayWebhookPolicy } = await import('./deliver.js');
    try {
      compile.webhookPolicy = replayWebhookPolicy();
    } catch (err) {
      process.stderr.write(`vigil run: ${(err as Error).message}\n`);
      return 2;
    }
    delivery = createReplayDelivery((line) => process.stderr.write(line + '\n'), compile.webhookPolicy);
  }
  // Made only now: lines read before the replay iterates them would be lost.
  const lines = createInterface({ input, crlfDelay: Infinity });
  const code = await replay(
    {
      rules: files,
      events: lines,
      eventsName: fromStdin ? 'stdin' : values.events,
      stream: values.stream,
      onAlert: delivery?.onAlert,
      until,
      compile,
      onSummary: (s) => {
        for (const line of renderSummary(s)) process.stderr.write(line + '\n');
      },
    },
    (record) => out.write(JSON.stringify(record) + '\n'),
    (line) => process.stderr.write(line + '\n'),
  );
  const deliveryCode = delivery ? await delivery.finish() : 0;
  return code || deliveryCode;
}
