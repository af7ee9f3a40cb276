// Shared by the golden corpus and the example rules: reading expected NDJSON, and comparing
// alert records without the fields no hand-worked expectation can hold.

/** The JSON values of an NDJSON text, blank lines skipped. */
export function parseNdjson(text: string): unknown[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as unknown);
}

/** An alert record without `id` (a hash) and `detectedAt` (the wall clock); other records as they are. */
export function strip(r: unknown): unknown {
  const rec = r as Record<string, unknown>;
  if (rec.kind !== 'match' && rec.kind !== 'timeout') return r;
  const { id: _id, detectedAt: _detectedAt, ...rest } = rec;
  return rest;
}
