// "Did you mean": the closest known name to a name that is not known (steps, fields, functions,
// streams). Edit distance with adjacent transpositions (`hto` → `hot` is one edit), bounded so
// that short names do not suggest each other (`a` is not a typo of `b`).

/** Optimal-string-alignment distance between `a` and `b`, or `limit + 1` once it exceeds `limit`. */
export function editDistance(a: string, b: string, limit = 2): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  const n = b.length;
  let prev2: number[] = new Array<number>(n + 1).fill(0);
  let prev: number[] = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur: number[] = [i];
    let rowMin = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur[j] = d;
      if (d < rowMin) rowMin = d;
    }
    if (rowMin > limit) return limit + 1;
    prev2 = prev;
    prev = cur;
  }
  return Math.min(prev[n]!, limit + 1);
}

/**
 * Edits allowed between a name and a suggestion: at most 2, and at most a third of the longer
 * name (so `bigg` → `big` and `amont` → `amount`, but no suggestion between one- or two-letter names).
 */
function allowed(a: string, b: string): number {
  return Math.min(2, Math.floor(Math.max(a.length, b.length) / 3));
}

/** Is `name` a likely typo of `known` (different, and within the allowed edits)? */
export function isClose(name: string, known: string): boolean {
  if (name === known) return false;
  const max = allowed(name, known);
  if (max === 0) return false;
  // Case alone is one edit per letter; `Amount` for `amount` is still a typo.
  if (name.toLowerCase() === known.toLowerCase()) return true;
  return editDistance(name, known, max) <= max;
}

/** The closest of `candidates` to `name` (ties: the first given), or null. */
export function closest(name: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    if (!isClose(name, c)) continue;
    const d = name.toLowerCase() === c.toLowerCase() ? 0.5 : editDistance(name, c, 2);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/** `; did you mean 'x'?` when a close name exists, else ''. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const c = closest(name, candidates);
  return c === null ? '' : `; did you mean '${c}'?`;
}
