// The parser of rules files: text → Program (ast.ts) plus diagnostics. It never throws.
//
// 1. The lexer turns the whole text into tokens (lexer.ts); its errors become diagnostics.
// 2. The tokens are split into declarations (`stream` / `rule` at brace depth 0, or anywhere
//    as `rule NAME ["TITLE"] {`), and each declaration body into clauses at the clause words
//    (§3, §4). Each piece is parsed on its own by the nearley grammar (grammar/vigil.ne), so
//    one broken clause costs one diagnostic and every other clause and declaration survives.
// 3. Templates (alert message, email subject, MQTT topic) are parsed once their clause has
//    parsed (template.ts), their holes with the grammar's expression entry.
// It does not check meaning (unknown streams, duplicate clauses, quantifier bounds): that is
// the compiler's job.

import nearley from 'nearley';
import { diagnostic, type Diagnostic, type Span } from '../core/diagnostics.js';
import type { Decl, GivenEvent, TestClause, TestDecl, Expr, Program, RuleClause, RuleDecl, StreamClause, StreamDecl, Template, Ident, StringLit } from './ast.js';
import compiledGrammar from './generated/vigil.js';
import { tokenize, tokenSpan, type LexError, type Token, type TokenType } from './lexer.js';
import { parseTemplate } from './template.js';

/** Guards against pathological input: the parser stays fast and bounded whatever it is fed. */
const MAX_SOURCE_CHARS = 4_000_000;
const MAX_PIECE_TOKENS = 4_000;
const MAX_NESTING = 100;

const grammar = nearley.Grammar.fromCompiled(compiledGrammar as unknown as nearley.CompiledRules);

type Entry = 'entryExpr' | 'entryStreamClause' | 'entryRuleClause' | 'entryStreamHead' | 'entryRuleHead' | 'entryTestHead' | 'entryTestClause';

const RULE_CLAUSE_WORDS = new Set(['from', 'match', 'within', 'skip', 'alert', 'throttle']);
const TEST_CLAUSE_WORDS = new Set(['given', 'until', 'expect']);
const STREAM_CLAUSE_WORDS = new Set(['key', 'time', 'watermark', 'idle', 'fields', 'source', 'id']);

export interface ParseResult {
  program: Program;
  diagnostics: Diagnostic[];
}

/**
 * Parses one rules file. `program.decls` holds every declaration whose head parsed, with the
 * clauses that parsed; every problem is a diagnostic (code `dsl/...`), sorted by position.
 */
export function parseProgram(source: string, file: string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const text = typeof source === 'string' ? source : '';
  const program: Program = { file, source: text, decls: [] };
  try {
    if (typeof source !== 'string') throw new TypeError('the source is not a string');
    if (text.length > MAX_SOURCE_CHARS) {
      diagnostics.push(
        diagnostic('error', 'dsl/too-large', `file too large to parse (${text.length} characters, at most ${MAX_SOURCE_CHARS})`, file, startSpan()),
      );
    } else {
      const { tokens, errors } = tokenize(text);
      for (const e of errors) diagnostics.push(diagnostic('error', e.code, e.message, file, e.span));
      new FileParser(text, file, tokens, errors, diagnostics).parseDecls(program.decls);
    }
  } catch (e) {
    // A bug in the parser, not in the rules: reported as data like everything else.
    const message = e instanceof Error ? e.message : String(e);
    diagnostics.push(diagnostic('error', 'dsl/internal', `internal parser error: ${message}`, file, startSpan()));
  }
  diagnostics.sort((a, b) => a.offset - b.offset);
  return { program, diagnostics };
}

/**
 * Parses `source` as one expression (language §7), e.g. for tools and tests. Same lexer,
 * grammar and diagnostics as `parseProgram`; never throws.
 */
export function parseExpression(source: string, file: string): { expr: Expr | null; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  let expr: Expr | null = null;
  try {
    const text = typeof source === 'string' ? source : '';
    if (text.length > MAX_SOURCE_CHARS) {
      diagnostics.push(diagnostic('error', 'dsl/too-large', `text too large to parse (${text.length} characters)`, file, startSpan()));
    } else {
      const { tokens, errors } = tokenize(text);
      for (const e of errors) diagnostics.push(diagnostic('error', e.code, e.message, file, e.span));
      const parser = new FileParser(text, file, tokens, errors, diagnostics);
      expr = parser.parseWhole('entryExpr', errors.some((e) => e.breaksTokens)) as Expr | null;
    }
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    diagnostics.push(diagnostic('error', 'dsl/internal', `internal parser error: ${message}`, file, startSpan()));
  }
  diagnostics.sort((a, b) => a.offset - b.offset);
  return { expr, diagnostics };
}

function startSpan(): Span {
  return { offset: 0, endOffset: 0, line: 1, col: 1 };
}

/** Feeds nearley a prepared token array (the synthetic entry token first). */
class TokenStream implements nearley.Lexer {
  private index = 0;
  constructor(private readonly tokens: Token[]) {}
  reset(): void {
    this.index = 0;
  }
  next(): Token | undefined {
    return this.tokens[this.index++];
  }
  save(): nearley.LexerState {
    return {};
  }
  formatError(): string {
    return '';
  }
  has(): boolean {
    return true;
  }
}

/** The parts of nearley's parse table that the error summary reads (not in its typings). */
interface EarleyState {
  rule: { id: number; name: string; symbols: unknown[] };
  dot: number;
  reference: number;
}
interface EarleyTable {
  table: { states: EarleyState[] }[];
  current: number;
}

class FileParser {
  constructor(
    private readonly source: string,
    private readonly file: string,
    private readonly tokens: Token[],
    lexErrors: LexError[],
    private readonly diagnostics: Diagnostic[],
  ) {
    this.breakOffsets = lexErrors.filter((e) => e.breaksTokens).map((e) => e.span.offset);
  }

  /** Offsets of the lexical errors that dropped or cut a token, ascending. */
  private readonly breakOffsets: number[];

  // ------------------------------------------------------------ declarations

  /** All the tokens as one piece from `entry`. */
  parseWhole(entry: Entry, quiet: boolean): unknown {
    if (this.tokens.length === 0) {
      if (!quiet) this.error('dsl/unexpected-token', 'unexpected end of file, expected an expression', this.endSpan());
      return null;
    }
    return this.parsePiece(entry, this.tokens, null, quiet, 'the end of the expression');
  }


  parseDecls(out: Decl[]): void {
    const tokens = this.tokens;
    let i = 0;
    while (i < tokens.length) {
      if (this.isTestStart(i)) {
        i = this.parseTest(i, out);
        continue;
      }
      if (this.isDeclStart(i, true)) {
        i = this.parseDecl(i, out);
        continue;
      }
      this.error('dsl/unexpected-token', `unexpected ${describe(tokens[i]!)}, expected 'stream', 'rule' or 'test'`, tokenSpan(tokens[i]!));
      // Skip to the next declaration; braces are tracked so that a stray block is skipped whole.
      let depth = 0;
      do {
        depth = braceDepth(depth, tokens[i]!);
        i++;
      } while (i < tokens.length && !this.isDeclStart(i, depth === 0) && !(depth === 0 && this.isTestStart(i)));
    }
  }

  /** `test "TITLE"` (a test block, language §13). */
  private isTestStart(i: number): boolean {
    const t = this.tokens[i]!;
    return t.type === 'ident' && t.text === 'test' && this.tokens[i + 1]?.type === 'string';
  }

  /**
   * `test "TITLE" { CLAUSE... }`. Clauses start at `given`, `until` and `expect` at brace depth 0;
   * each parses on its own (the grammar's test entry), except the events of `given STREAM { ... }`:
   * each `{...}` is one JSON object, read with JSON.parse from its source text.
   */
  private parseTest(i: number, out: Decl[]): number {
    const tokens = this.tokens;
    const open = i + 2;
    if (!isPunct(tokens[open], '{')) {
      this.parsePiece('entryTestHead', tokens.slice(i, open + 1), tokens[open + 1] ?? null, this.quietBetween(i, open + 1));
      let depth = 0;
      let k = i + 2;
      while (k < tokens.length && !(depth === 0 && (this.isDeclStart(k, true) || this.isTestStart(k)))) depth = braceDepth(depth, tokens[k++]!);
      return k;
    }
    const title = tokens[i + 1]!;
    let depth = 1;
    let close = -1;
    let k = open + 1;
    for (; k < tokens.length; k++) {
      if (this.isDeclStart(k, false)) break;
      depth = braceDepth(depth, tokens[k]!);
      if (depth === 0) {
        close = k;
        break;
      }
    }
    const bodyEnd = close >= 0 ? close : k;
    if (close < 0) this.error('dsl/unclosed-brace', `missing '}' to close test "${title.value}"`, tokenSpan(tokens[open]!));
    // Clause starts: a clause word at depth 0 of the body.
    const starts: number[] = [];
    depth = 0;
    for (let j = open + 1; j < bodyEnd; j++) {
      const t = tokens[j]!;
      if (depth === 0 && t.type === 'ident' && TEST_CLAUSE_WORDS.has(t.text)) starts.push(j);
      depth = braceDepth(depth, t);
    }
    if (open + 1 < bodyEnd && starts[0] !== open + 1) {
      const t = tokens[open + 1]!;
      this.error('dsl/unexpected-token', `unexpected ${describe(t)}, expected 'given', 'until' or 'expect'`, tokenSpan(t));
    }
    const clauses: TestClause[] = [];
    for (let c = 0; c < starts.length; c++) {
      const start = starts[c]!;
      const end = c + 1 < starts.length ? starts[c + 1]! : bodyEnd;
      const clause = this.isGivenBlock(start, end) ? this.parseGivenBlock(start, end) : (this.parsePiece('entryTestClause', tokens.slice(start, end), tokens[end] ?? null, this.quietBetween(start, end)) as TestClause | null);
      if (clause !== null) clauses.push(clause);
    }
    const last = tokens[close >= 0 ? close : bodyEnd - 1]!;
    const decl: TestDecl = {
      kind: 'test',
      name: { name: title.value, span: tokenSpan(title) },
      clauses,
      span: { ...tokenSpan(tokens[i]!), endOffset: last.endOffset },
    };
    out.push(decl);
    return close >= 0 ? close + 1 : k;
  }

  private isGivenBlock(start: number, end: number): boolean {
    const t = this.tokens;
    return t[start]!.text === 'given' && start + 2 < end && t[start + 1]!.type === 'ident' && isPunct(t[start + 2], '{');
  }

  /** `given STREAM { {...} {...} }`: each event is a JSON object; a comma between events is allowed. */
  private parseGivenBlock(start: number, end: number): TestClause | null {
    const tokens = this.tokens;
    const stream = tokens[start + 1]!;
    const events: GivenEvent[] = [];
    let ok = true;
    let j = start + 3;
    let closed = false;
    while (j < end) {
      const t = tokens[j]!;
      if (isPunct(t, '}')) {
        closed = true;
        j++;
        break;
      }
      if (isPunct(t, ',')) {
        j++;
        continue;
      }
      if (!isPunct(t, '{')) {
        this.error('dsl/unexpected-token', `unexpected ${describe(t)}, expected an event (a JSON object) or '}'`, tokenSpan(t));
        return null;
      }
      // The matching '}' of this event.
      let depth = 0;
      let k = j;
      const fields: { name: string; span: Span }[] = [];
      for (; k < end; k++) {
        const u = tokens[k]!;
        if (depth === 1 && u.type === 'string' && isPunct(tokens[k + 1], ':')) fields.push({ name: u.value, span: tokenSpan(u) });
        depth = braceDepth(depth, u);
        if (depth === 0) break;
      }
      if (k >= end) {
        this.error('dsl/unclosed-brace', "missing '}' to close this event", tokenSpan(t));
        return null;
      }
      const text = this.source.slice(t.offset, tokens[k]!.endOffset);
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        this.error('dsl/bad-event', `this event is not valid JSON: ${(err as Error).message}`, { ...tokenSpan(t), endOffset: tokens[k]!.endOffset });
        ok = false;
        j = k + 1;
        continue;
      }
      events.push({ value: value as GivenEvent['value'], span: { ...tokenSpan(t), endOffset: tokens[k]!.endOffset }, fields });
      j = k + 1;
    }
    if (!closed) {
      this.error('dsl/unclosed-brace', `missing '}' to close the events of stream '${stream.value}'`, tokenSpan(tokens[start + 2]!));
      return null;
    }
    if (j < end) {
      const t = tokens[j]!;
      this.error('dsl/unexpected-token', `unexpected ${describe(t)}, expected 'given', 'until', 'expect' or '}'`, tokenSpan(t));
    }
    if (!ok) return null;
    const endTok = tokens[j - 1]!;
    return { kind: 'given', stream: { name: stream.value, span: tokenSpan(stream) }, events, from: null, span: { ...tokenSpan(tokens[start]!), endOffset: endTok.endOffset } };
  }

  /** `stream`/`rule` at depth 0, or anywhere when it reads `rule NAME ["TITLE"] {` / `stream NAME {`. */
  private isDeclStart(i: number, atDepthZero: boolean): boolean {
    const t = this.tokens[i]!;
    if (t.type === 'ident' && t.text === 'test' && !atDepthZero) return this.tokens[i + 1]?.type === 'string' && isPunct(this.tokens[i + 2], '{');
    if (t.type !== 'ident' || (t.text !== 'stream' && t.text !== 'rule')) return false;
    if (atDepthZero) return true;
    const a = this.tokens[i + 1];
    const b = this.tokens[i + 2];
    const c = this.tokens[i + 3];
    if (a?.type !== 'ident') return false;
    if (isPunct(b, '{')) return true;
    return t.text === 'rule' && b?.type === 'string' && isPunct(c, '{');
  }

  /** Parses the declaration starting at token `i`; returns the index just after it. */
  private parseDecl(i: number, out: Decl[]): number {
    const tokens = this.tokens;
    const keyword = tokens[i]!;
    const kind = keyword.text === 'stream' ? 'stream' : 'rule';

    // 1. The head: `stream NAME {` or `rule NAME ["TITLE"] {`.
    let open = i + 1;
    while (open < tokens.length && open <= i + 3 && !isPunct(tokens[open], '{')) open++;
    if (!isPunct(tokens[open], '{')) {
      const end = Math.min(open, tokens.length);
      this.parsePiece(kind === 'stream' ? 'entryStreamHead' : 'entryRuleHead', tokens.slice(i, end), tokens[end] ?? null, this.quietBetween(i, end));
      // No body to speak of: skip to the next declaration.
      let depth = 0;
      let k = i + 1;
      while (k < tokens.length && !this.isDeclStart(k, depth === 0)) depth = braceDepth(depth, tokens[k++]!);
      return k;
    }
    const head = this.parsePiece(kind === 'stream' ? 'entryStreamHead' : 'entryRuleHead', tokens.slice(i, open + 1), tokens[open + 1] ?? null, this.quietBetween(i, open + 1)) as
      | { name: Ident; title?: StringLit | null }
      | null;

    // 2. The body, up to the matching `}`, or up to the next declaration / end of file.
    let depth = 1;
    let k = open + 1;
    let close = -1;
    for (; k < tokens.length; k++) {
      const t = tokens[k]!;
      if (this.isDeclStart(k, false)) break;
      depth = braceDepth(depth, t);
      if (depth === 0) {
        close = k;
        break;
      }
    }
    const bodyEnd = close >= 0 ? close : k;
    const what = head !== null ? `${kind} '${head.name.name}'` : kind;
    if (close < 0) {
      this.error('dsl/unclosed-brace', `missing '}' to close ${what}`, tokenSpan(tokens[open]!));
    }

    // 3. The clauses, each parsed on its own.
    const clauses: (StreamClause | RuleClause)[] = [];
    for (const [start, end] of splitClauses(tokens, open + 1, bodyEnd, kind)) {
      const entry = kind === 'stream' ? 'entryStreamClause' : 'entryRuleClause';
      const isMatch = kind === 'rule' && tokens[start]?.type === 'ident' && tokens[start]!.value === 'match';
      const reported = this.diagnostics.length;
      const clause = this.parsePiece(entry, tokens.slice(start, end), tokens[end] ?? null, isMatch || this.quietBetween(start, end)) as
        | StreamClause
        | RuleClause
        | null;
      // (Size and depth limits report even when quiet: then there is nothing more to say.)
      if (clause === null && isMatch && this.diagnostics.length === reported) this.matchErrors(tokens, start, end);
      if (clause === null) continue;
      if (kind === 'rule') this.fillTemplates(clause as RuleClause);
      clauses.push(clause);
    }

    if (head !== null) {
      const last = tokens[close >= 0 ? close : bodyEnd - 1]!;
      const span = { ...tokenSpan(keyword), endOffset: last.endOffset };
      if (kind === 'stream') {
        const decl: StreamDecl = { kind: 'stream', name: head.name, clauses: clauses as StreamClause[], span };
        out.push(decl);
      } else {
        const decl: RuleDecl = { kind: 'rule', name: head.name, title: head.title ?? null, clauses: clauses as RuleClause[], span };
        out.push(decl);
      }
    }
    return close >= 0 ? close + 1 : k;
  }

  /** True when a lexical error that changed the tokens lies in tokens [start, end) or up to the next token. */
  private quietBetween(start: number, end: number): boolean {
    const from = this.tokens[start]?.offset ?? this.source.length;
    const to = this.tokens[end]?.offset ?? this.source.length;
    // Binary search: the lexer reports errors in source order.
    const offsets = this.breakOffsets;
    let lo = 0;
    let hi = offsets.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (offsets[mid]! < from) lo = mid + 1;
      else hi = mid;
    }
    return lo < offsets.length && offsets[lo]! <= to;
  }

  // ------------------------------------------------------------ templates

  /**
   * A `match` clause that does not parse: every step of the pattern is parsed on its own (the
   * clause split before each `then` / `next` that begins a step), so that each broken step
   * reports its own error, as each broken clause does. When no step fails alone, the error is
   * in how they join: the whole clause reports it.
   */
  private matchErrors(tokens: Token[], start: number, end: number): void {
    const cuts = stepStarts(tokens, start + 1, end);
    let reported = false;
    const before = this.diagnostics.length;
    for (let p = 0; p <= cuts.length; p++) {
      const from = p === 0 ? start + 1 : cuts[p - 1]!.step;
      const to = p < cuts.length ? cuts[p]!.link : end;
      if (from >= to) continue;
      const piece = [tokens[start]!, ...tokens.slice(from, to)];
      const quiet = this.quietBetween(from, to);
      this.parsePiece('entryRuleClause', piece, tokens[to] ?? null, quiet);
      if (this.diagnostics.length > before) reported = true;
    }
    if (!reported) this.parsePiece('entryRuleClause', tokens.slice(start, end), tokens[end] ?? null, this.quietBetween(start, end));
  }

  private fillTemplates(clause: RuleClause): void {
    if (clause.kind !== 'alert') return;
    this.fillTemplate(clause.message);
    for (const sink of clause.sinks) {
      if (sink.kind === 'email' && sink.subject !== null) this.fillTemplate(sink.subject);
      if (sink.kind === 'mqtt') this.fillTemplate(sink.topic);
    }
  }

  private fillTemplate(template: Template): void {
    const parsed = parseTemplate(
      this.source,
      template.span,
      this.file,
      (tokens, closing, quiet) => this.parsePiece('entryExpr', tokens, closing, quiet) as Expr | null,
      this.diagnostics,
    );
    template.parts = parsed.parts;
  }

  // ------------------------------------------------------------ one piece through nearley

  /**
   * Parses `tokens` from the grammar entry `entry`. `following` is the token after the piece
   * (what the parser "sees" when the piece ends too early); null at the end of the file.
   * On a syntax error reports one diagnostic (unless `quiet`) and returns null.
   */
  private parsePiece(entry: Entry, tokens: Token[], following: Token | null, quiet: boolean, end = endPhrase(entry)): unknown {
    const first = tokens[0] ?? following;
    if (tokens.length > MAX_PIECE_TOKENS) {
      this.error('dsl/too-large', `this part is too long to parse (${tokens.length} tokens, at most ${MAX_PIECE_TOKENS})`, tokenSpan(first!));
      return null;
    }
    const deep = tooDeep(tokens);
    if (deep !== null) {
      this.error('dsl/too-deep', `brackets nested too deeply (more than ${MAX_NESTING} levels)`, tokenSpan(deep));
      return null;
    }
    const entryToken: Token = { type: entry as TokenType, text: '', value: '', offset: 0, endOffset: 0, line: 1, col: 1 };
    const parser = new nearley.Parser(grammar, { lexer: new TokenStream([entryToken, ...tokens]) });
    // nearley's own report walks its whole parse table (slow, and recursive): we build ours.
    const quick = (): string => 'syntax error';
    Object.assign(parser, { reportError: quick, reportLexerError: quick });
    try {
      parser.feed('');
    } catch (e) {
      const token = (e as { token?: Token }).token;
      if (token === undefined || token.type === entry) throw e;
      if (!quiet) this.unexpected(token, parser as unknown as EarleyTable, end);
      return null;
    }
    const results = parser.results;
    if (results.length === 0) {
      if (!quiet) this.unexpected(following, parser as unknown as EarleyTable, end);
      return null;
    }
    if (results.length > 1) {
      this.error('dsl/ambiguous', `internal: ${results.length} ways to parse this (please report it)`, tokenSpan(first!));
    }
    return results[0];
  }

  /** `unexpected 'foo', expected ':' or a quantifier` at `token` (null: end of file). */
  private unexpected(token: Token | null, parser: EarleyTable, end: string): void {
    const column = parser.table[parser.current];
    const expected = column !== undefined ? summarizeExpected(column.states, end) : [];
    const found = token === null ? 'end of file' : describe(token);
    const message = expected.length > 0 ? `unexpected ${found}, expected ${orList(expected)}` : `unexpected ${found}`;
    this.error('dsl/unexpected-token', message, token === null ? this.endSpan() : tokenSpan(token));
  }

  private endSpan(): Span {
    const lines = this.source.split('\n');
    const lastLine = lines[lines.length - 1]!;
    return { offset: this.source.length, endOffset: this.source.length, line: lines.length, col: lastLine.length + 1 };
  }

  private error(code: string, message: string, span: Span): void {
    this.diagnostics.push(diagnostic('error', code, message, this.file, span));
  }
}

// ------------------------------------------------------------ clause splitting

/**
 * Splits a declaration body (tokens [from, to)) into clauses. A clause word starts a new
 * clause when it is at bracket depth 0 and the token before it does not wait for an operand
 * (so `key time` is the clause `key` on the field `time`, `match within: x` a step named
 * `within`). A clause word first on its line starts a clause even after a token that waits
 * for more (`from a,` then `match ...` on the next line) and closes an unbalanced `(` / `[`
 * before it, so a slip costs one clause, not the rest of the rule — unless it reads like a
 * step (`within: x`, `from{2}: x`). `max` starts a clause only as `max partials` (in a rule) or
 * `max lead` / `max size` (in a stream): `max(a, b)` is a call; `on` only as `on timeout`. The first word(s) of a clause never start another.
 */
function splitClauses(tokens: Token[], from: number, to: number, kind: 'stream' | 'rule'): [number, number][] {
  const pieces: [number, number][] = [];
  let start = from;
  let headLength = Math.max(1, clauseHeadLength(tokens, from, kind));
  const open: string[] = [];
  for (let k = from; k < to; k++) {
    const t = tokens[k]!;
    const length = k > start ? clauseHeadLength(tokens, k, kind) : 0;
    if (length > 0 && k - 1 >= start + headLength) {
      const prev = tokens[k - 1]!;
      const next = tokens[k + 1];
      const firstOnLine = prev.line !== t.line;
      const looksLikeStep = kind === 'rule' && next !== undefined && next.type === 'punct' && ':{?'.includes(next.text);
      const split =
        open.length === 0
          ? !waitsForOperand(prev) || (firstOnLine && !looksLikeStep)
          : firstOnLine && !looksLikeStep && !open.includes('{');
      if (split) {
        pieces.push([start, k]);
        start = k;
        headLength = length;
        open.length = 0;
      }
    }
    if (t.type === 'punct') {
      if (t.text === '(' || t.text === '[' || t.text === '{') open.push(t.text);
      else if ((t.text === ')' || t.text === ']' || t.text === '}') && open.length > 0) open.pop();
    }
  }
  if (start < to) pieces.push([start, to]);
  return pieces;
}

/** The number of words that open a clause at token k (0: no clause starts here). */
function clauseHeadLength(tokens: Token[], k: number, kind: 'stream' | 'rule'): number {
  const t = tokens[k];
  if (t === undefined || t.type !== 'ident') return 0;
  const next = tokens[k + 1];
  if (kind === 'stream') {
    if (t.text === 'max' && next?.type === 'ident' && (next.text === 'lead' || next.text === 'size')) return 2;
    return STREAM_CLAUSE_WORDS.has(t.text) ? 1 : 0;
  }
  if (RULE_CLAUSE_WORDS.has(t.text)) return 1;
  if (t.text === 'on' && next?.type === 'ident' && next.text === 'timeout') return 2;
  if (t.text === 'max' && next?.type === 'ident' && next.text === 'partials') return 2;
  return 0;
}

/** A token after which an operand (or a step) must follow: a clause word there is a name. */
function waitsForOperand(t: Token): boolean {
  switch (t.type) {
    case 'op':
    case 'matches':
      return true;
    case 'kw':
      return t.text !== 'true' && t.text !== 'false' && t.text !== 'null';
    case 'punct':
      return t.text !== ')' && t.text !== ']' && t.text !== '}' && t.text !== '$';
    case 'ident':
      // Pattern links: `then within: x` is a step named `within`.
      return t.text === 'then' || t.text === 'next';
    default:
      return false;
  }
}

/**
 * Where the steps of a pattern begin, in tokens [from, to): at depth 0, a `then` / `next`
 * followed by `[any] [not] NAME` and then `:` or a quantifier. `link` is the index of the
 * link word, `step` of the step's first token.
 */
function stepStarts(tokens: Token[], from: number, to: number): { link: number; step: number }[] {
  const out: { link: number; step: number }[] = [];
  let depth = 0;
  const word = (i: number, w: string) => i < to && tokens[i]!.type === 'ident' && tokens[i]!.value === w;
  for (let i = from; i < to; i++) {
    const t = tokens[i]!;
    if (t.value === '(' || t.value === '[' || t.value === '{') depth++;
    else if (t.value === ')' || t.value === ']' || t.value === '}') depth = Math.max(0, depth - 1);
    if (depth !== 0 || !(word(i, 'then') || word(i, 'next'))) continue;
    let j = i + 1;
    if (tokens[i]!.value === 'then' && word(j, 'any')) j++;
    const stepAt = j;
    if (j < to && tokens[j]!.value === 'not') j++;
    if (!(j < to && tokens[j]!.type === 'ident')) continue;
    const after = tokens[j + 1];
    if (after === undefined || j + 1 >= to || !(after.value === ':' || after.value === '{' || after.value === '+' || after.value === '*' || after.value === '?')) continue;
    out.push({ link: i, step: stepAt });
  }
  return out;
}

function braceDepth(depth: number, t: Token): number {
  if (t.type !== 'punct') return depth;
  if (t.text === '{') return depth + 1;
  if (t.text === '}') return Math.max(0, depth - 1);
  return depth;
}

function isPunct(t: Token | undefined, text: string): boolean {
  return t !== undefined && t.type === 'punct' && t.text === text;
}

/** The first token that opens bracket level MAX_NESTING + 1, or null. */
function tooDeep(tokens: Token[]): Token | null {
  let depth = 0;
  for (const t of tokens) {
    if (t.type !== 'punct') continue;
    if (t.text === '(' || t.text === '[' || t.text === '{') {
      if (++depth > MAX_NESTING) return t;
    } else if (t.text === ')' || t.text === ']' || t.text === '}') {
      depth = Math.max(0, depth - 1);
    }
  }
  return null;
}

// ------------------------------------------------------------ error messages

function describe(t: Token): string {
  if (t.type === 'string') return t.text.length > 24 ? `${t.text.slice(0, 20)}..."` : t.text;
  const text = t.text.length > 24 ? `${t.text.slice(0, 20)}...` : t.text;
  return `'${text}'`;
}

function orList(items: string[]): string {
  if (items.length === 1) return items[0]!;
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

const TYPE_NAMES: Record<string, string> = {
  ident: 'a name',
  number: 'a number',
  string: 'a string',
  duration: 'a duration (like 5s)',
  regex: 'a regular expression /re/flags',
};

// Groups of expected tokens that read better as one phrase. A group applies when all of its
// `when` members are expected; it then replaces every expected member of `covers`.
const GROUPS: { when: string[]; covers: string[]; say: string }[] = [
  { when: ['{', '+', '*', '?'], covers: ['{', '+', '*', '?'], say: 'a quantifier' },
  {
    when: ['#number', '#string', '#ident', '('],
    covers: ['#number', '#string', '#duration', '#ident', '(', '[', '-', '$', 'not', 'true', 'false', 'null'],
    say: 'an expression',
  },
  {
    when: ['+', '*'],
    covers: ['==', '!=', '<', '<=', '>', '>=', 'in', 'not', 'contains', 'startswith', 'endswith', 'matches', '+', '-', '*', '/', '%', 'and', 'or', '.', '[', '('],
    say: 'an operator',
  },
  { when: ['#ident', '#kw'], covers: ['#ident', '#kw', '#matches'], say: 'a field name' },
  { when: ['not', '#ident', '('], covers: ['not', '#ident', '('], say: 'a step' },
  {
    when: ['greedy', 'consecutive', 'combinations', 'until'],
    covers: ['greedy', 'consecutive', 'combinations', 'until'],
    say: 'a modifier (greedy, consecutive, combinations, until)',
  },
  {
    when: ['string', 'number', 'boolean', 'time', 'object', 'list', 'any'],
    covers: ['string', 'number', 'boolean', 'time', 'object', 'list', 'any'],
    say: 'a type (string, number, boolean, time, object, list, any)',
  },
  {
    when: ['from', 'match', 'within', 'skip', 'alert', 'on', 'throttle', 'max'],
    covers: ['from', 'match', 'within', 'skip', 'alert', 'on', 'throttle', 'max'],
    say: 'a rule clause (from, match, within, skip, alert, on timeout, throttle, max partials)',
  },
  {
    when: ['key', 'time', 'watermark', 'idle', 'fields', 'source', 'id', 'max'],
    covers: ['key', 'time', 'watermark', 'idle', 'fields', 'source', 'id', 'max'],
    say: 'a stream clause (key, time, watermark, idle, fields, source, id, max lead, max size)',
  },
];

/** How to say "this piece may end here" (a template hole ends at its `}`). */
function endPhrase(entry: Entry): string {
  if (entry === 'entryExpr') return "'}'";
  if (entry === 'entryRuleClause' || entry === 'entryStreamClause') return 'the end of the clause';
  return 'the end';
}

/** What the grammar would have accepted next, as a short list of phrases. */
function summarizeExpected(states: EarleyState[], end: string): string[] {
  // Keys: a literal's text, or '#type' for a token type, in the order of the grammar's rules.
  const found: { key: string; order: number }[] = [];
  let canEnd = false;
  for (const state of states) {
    const symbol = state.rule.symbols[state.dot];
    if (symbol === undefined) {
      if (state.rule.name === grammar.start && state.reference === 0) canEnd = true;
      continue;
    }
    if (typeof symbol === 'string') continue;
    const s = symbol as { literal?: string; type?: string };
    const key = s.literal !== undefined ? s.literal : s.type !== undefined && !s.type.startsWith('entry') ? `#${s.type}` : null;
    if (key !== null) found.push({ key, order: state.rule.id * 1000 + state.dot });
  }
  found.sort((a, b) => a.order - b.order);
  const keys = [...new Set(found.map((f) => f.key))];
  const fired = GROUPS.filter((g) => g.when.every((k) => keys.includes(k)));
  const phrases: string[] = [];
  for (const key of keys) {
    const group = fired.find((g) => g.covers.includes(key));
    const phrase = group !== undefined ? group.say : key.startsWith('#') ? (TYPE_NAMES[key.slice(1)] ?? `a ${key.slice(1)}`) : `'${key}'`;
    if (!phrases.includes(phrase)) phrases.push(phrase);
  }
  if (canEnd) phrases.push(end);
  return phrases.length > 10 ? [...phrases.slice(0, 9), 'something else'] : phrases;
}
