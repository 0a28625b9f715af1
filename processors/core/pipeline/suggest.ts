/**
 * "Did you mean X?" for unknown names: the closest candidate by edit distance
 * (optimal string alignment: insertions, deletions, substitutions and swaps of two
 * neighbours each cost 1), compared case-insensitively.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate, when it is close enough to be a likely typo; undefined otherwise. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  const wanted = name.toLowerCase();
  // A third of the name may be wrong (at least 2 characters): `brokr` -> `brokers`, not `bucket`.
  const limit = Math.max(2, Math.floor(wanted.length / 3));
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(wanted, candidate.toLowerCase());
    if (distance <= limit && (!best || distance < best.distance)) best = { candidate, distance };
  }
  if (best) return best.candidate;
  // A shortened name (`avro` for `avro_registry`) is a typo too, when it is not too short to tell.
  if (wanted.length >= 3) {
    const prefixed = [...candidates].filter((c) => c.toLowerCase().startsWith(wanted));
    if (prefixed.length === 1) return prefixed[0];
  }
  return undefined;
}

/** `did you mean "x"?` when a candidate is close, else the list of what is allowed. */
export function suggestion(name: string, candidates: readonly string[], what = 'use one of'): string {
  const near = closest(name, candidates);
  return near !== undefined ? `did you mean "${near}"?` : `${what}: ${candidates.join(', ')}`;
}
