// Rule texts shared by the service tests.

/** A stream with key, time and a schema. */
export const STREAM_S = `stream s {
  key k
  time ts
  fields {
    k: string
    ts: number
    type: string
    n: number?
  }
}
`;

/** A rule over s: a then b (per key). */
export const RULE_AB = `rule ab {
  from s
  match
    a: type == "a"
    then b: type == "b"
  within 1h
  alert info "ab {k}"
}
`;

/** An API rule `id` over s: a then `second`, with `message` (no within: partial matches live until matched). */
export function apiRule(id: string, message: string, second = 'b'): string {
  return `rule ${id} {
  from s
  match
    a: type == "a"
    then b: type == "${second}"
  within 1h
  alert info "${message} {k}"
}
`;
}
