// Rule texts as shown to readers (issue 15, "Secrets and reach"): the literal secrets a rule
// text carries are replaced by `<secret>` — in a webhook URL everything after the host (path,
// query, fragment: Slack-style hooks carry their token in the path) and any credentials before
// it, header values (`header "Authorization" "Bearer ..."`) and a literal `secret "..."`. The
// scheme and host stay, so a reader sees where alerts go. `env("NAME")` settings show only
// their names and are left as written.
//
// Works on the tokens, not on the syntax tree, so a text that does not parse (a validate
// request, a rules file with an error) is redacted all the same. Comments are not touched.

import { tokenize, type Token } from './lexer.js';

export const SECRET_MARK = '<secret>';

/** `text` with the literal spans of sink secrets replaced by `"<secret>"` (see the file comment). */
export function redactRuleText(text: string): string {
  const { tokens } = tokenize(text);
  const cuts: { offset: number; endOffset: number; replacement: string }[] = [];
  const isWord = (t: Token | undefined, w: string) => t !== undefined && t.type === 'ident' && t.text === w;
  const isString = (t: Token | undefined): t is Token => t !== undefined && t.type === 'string';
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (isWord(t, 'webhook') && isString(tokens[i + 1])) {
      const s = tokens[i + 1]!;
      cuts.push({ offset: s.offset, endOffset: s.endOffset, replacement: redactUrlLiteral(s.value) });
    } else if (isWord(t, 'alertmanager')) {
      // `to alertmanager "URL", "URL"...`: every URL of the list (credentials may sit in any).
      for (let j = i + 1; isString(tokens[j]); j += 2) {
        const s = tokens[j]!;
        cuts.push({ offset: s.offset, endOffset: s.endOffset, replacement: redactUrlLiteral(s.value) });
        if (tokens[j + 1]?.text !== ',') break;
      }
    } else if (isWord(t, 'header') && isString(tokens[i + 1]) && isString(tokens[i + 2])) {
      const s = tokens[i + 2]!;
      cuts.push({ offset: s.offset, endOffset: s.endOffset, replacement: `"${SECRET_MARK}"` });
    } else if (isWord(t, 'secret') && isString(tokens[i + 1])) {
      const s = tokens[i + 1]!;
      cuts.push({ offset: s.offset, endOffset: s.endOffset, replacement: `"${SECRET_MARK}"` });
    }
  }
  if (cuts.length === 0) return text;
  let out = '';
  let at = 0;
  for (const c of cuts) {
    out += text.slice(at, c.offset) + c.replacement;
    at = c.endOffset;
  }
  return out + text.slice(at);
}

/** A URL literal with only `scheme://host[:port]` kept, quoted as a string of the language. */
export function redactUrlLiteral(url: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#\\]*)(.*)$/s.exec(url);
  if (!m) return `"${SECRET_MARK}"`;
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  const at = authority.lastIndexOf('@');
  const host = at >= 0 ? authority.slice(at + 1) : authority;
  if (!/^[A-Za-z0-9.\-:[\]]*$/.test(host)) return `"${SECRET_MARK}"`;
  const creds = at >= 0 ? `${SECRET_MARK}@` : '';
  const tail = rest === '' || rest === '/' ? rest : rest.startsWith('/') ? `/${SECRET_MARK}` : SECRET_MARK;
  return `"${scheme}${creds}${host}${tail}"`;
}
