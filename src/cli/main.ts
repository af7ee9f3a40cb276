// The `vigil` command: check, run, serve. A thin shell over the compiler and the engine.

import { createReadStream, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { renderDiagnostic } from '../core/diagnostics.js';
import { compileSources, type CompileOptions, type SourceFile } from '../compiler/rule.js';
import { parseUntil, renderSummary, replay } from './run.js';

const USAGE = `usage:
  vigil check [--strict] FILES...               compile rules; errors as file:line:col
                                                (--strict: warnings are errors too)
  vigil run RULES... --events FILE|- [--stream NAME] [--until TIME] [--deliver]
                                                evaluate rules over recorded NDJSON events
                                                (--until: time stops there, not at +∞)
  vigil serve [--host H] [--port P] [--data-dir D] [--rules-dir R] [--from-savepoint PATH] ...
                                                run the service (see README)`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'check':
      return check(rest);
    case 'run':
      return run(rest);
    case 'serve': {
      const { serve } = await import('./serve.js');
      return serve(rest);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
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
