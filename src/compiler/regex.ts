// Compiles the regex literal of `x matches /re/flags` with re2js (decision 7).
//
// RE2 matches in time linear in the subject, so no rule can make a condition hang. This module
// never falls back to the JavaScript RegExp engine (backtracking, super-linear) and never throws:
// bad flags and RE2 syntax errors (backreferences, lookaround, ...) become diagnostics positioned
// at the regex literal.

import { RE2JS } from 're2js';
import type { RegexLit } from '../dsl/ast.js';
import { diagnostic, type Diagnostic } from '../core/diagnostics.js';

/**
 * Largest compiled program (RE2 instructions) of one regular expression. Matching costs the
 * program size times the subject length, and counted repetitions multiply the program:
 * `(a|b){1,1000}` is 4,002 instructions; realistic patterns stay under a few hundred.
 */
export const MAX_REGEX_PROGRAM = 1_000;

/** Tests a subject string: an unanchored search, like RegExp.prototype.test. */
export type RegexTest = (subject: string) => boolean;

const FLAG_BITS: Record<string, number> = {
  i: RE2JS.CASE_INSENSITIVE,
  m: RE2JS.MULTILINE,
  s: RE2JS.DOTALL,
  // RE2 is Unicode-aware already (it matches code points, not UTF-16 units): `u` is accepted and changes nothing.
  u: 0,
};

/** A hint for the RE2 errors rule authors hit most, which come from backtracking-engine habits. */
function hintFor(fragment: string): string {
  if (/^\\[1-9]/.test(fragment)) return ' (RE2 has no backreferences)';
  if (/^\(\?(=|!|<=|<!)/.test(fragment)) return ' (RE2 has no lookahead or lookbehind)';
  return '';
}

/**
 * Compiles `lit` once. Returns the test function, or null after pushing a `compile/regex`
 * diagnostic (the caller then compiles the whole `matches` to false).
 */
export function compileRegex(lit: RegexLit, file: string, diagnostics: Diagnostic[]): RegexTest | null {
  let bits = 0;
  const seen = new Set<string>();
  for (const f of lit.flags) {
    const bit = FLAG_BITS[f];
    if (bit === undefined) {
      const why = f === 'g' || f === 'y' ? ` ('${f}' has no meaning for a yes/no match)` : '';
      diagnostics.push(
        diagnostic('error', 'compile/regex', `unsupported regex flag '${f}'${why}; flags are i, m, s, u`, file, lit.span),
      );
      return null;
    }
    if (seen.has(f)) {
      diagnostics.push(diagnostic('error', 'compile/regex', `regex flag '${f}' given twice`, file, lit.span));
      return null;
    }
    seen.add(f);
    bits |= bit;
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(lit.source, bits);
  } catch (e) {
    const err = e as { error?: unknown; input?: unknown; message?: unknown };
    const description = typeof err.error === 'string' ? err.error : String(err.message ?? e);
    const fragment = typeof err.input === 'string' ? err.input : '';
    const shown = fragment !== '' ? `${description}: \`${fragment}\`` : description;
    diagnostics.push(
      diagnostic(
        'error',
        'compile/regex',
        `invalid regular expression /${lit.source}/: ${shown}${hintFor(fragment)}`,
        file,
        lit.span,
      ),
    );
    return null;
  }
  const size = re.programSize();
  if (size > MAX_REGEX_PROGRAM) {
    diagnostics.push(
      diagnostic(
        'error',
        'compile/regex-too-large',
        `regular expression /${lit.source.length > 60 ? lit.source.slice(0, 60) + '…' : lit.source}/ compiles to ${size} instructions; the limit is ${MAX_REGEX_PROGRAM.toLocaleString('en-US')} (counted repetitions such as {1,1000} multiply its size)`,
        file,
        lit.span,
      ),
    );
    return null;
  }
  return (subject: string) => re.test(subject);
}
