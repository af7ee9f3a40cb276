// Diagnostics: errors and warnings as data, with positions. Collected, never thrown;
// rendered once by `renderDiagnostic` as `file:line:col: message`, the line, and a caret.

/** A source span. Lines and columns are 1-based; offsets are 0-based UTF-16 indexes. */
export interface Span {
  offset: number;
  /** Offset just past the last character. */
  endOffset: number;
  line: number;
  col: number;
}

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  /** `stage/meaning`, e.g. `dsl/unexpected-token`, `compile/unknown-stream`. */
  code: string;
  message: string;
  file: string;
  line: number;
  col: number;
  offset: number;
  endOffset: number;
}

export function diagnostic(
  severity: Severity,
  code: string,
  message: string,
  file: string,
  span: Span,
): Diagnostic {
  return {
    severity,
    code,
    message,
    file,
    line: span.line,
    col: span.col,
    offset: span.offset,
    endOffset: span.endOffset,
  };
}

/** The span from the start of `a` to the end of `b`. */
export function joinSpans(a: Span, b: Span): Span {
  return { offset: a.offset, endOffset: b.endOffset, line: a.line, col: a.col };
}

/**
 * `file:line:col: severity: message`, then the source line and a caret under the column
 * (the caret runs under the span while it stays on that line).
 */
export function renderDiagnostic(d: Diagnostic, source: string | undefined): string {
  const head = `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}`;
  if (source === undefined) return head;
  const lines = source.split(/\r?\n/);
  const text = lines[d.line - 1];
  if (text === undefined) return head;
  const lineStart = d.offset - (d.col - 1);
  const spanOnLine = Math.max(1, Math.min(d.endOffset, lineStart + text.length) - d.offset);
  const pad = text.slice(0, d.col - 1).replace(/[^\t]/g, ' ');
  return `${head}\n  ${text}\n  ${pad}${'^'.repeat(spanOnLine)}`;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}
