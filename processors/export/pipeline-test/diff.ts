/**
 * Comparing a record with what a test expects, and saying where they differ, one line per
 * path: `- row.amount_minor: 1500` (expected) / `+ row.amount_minor: 150` (got).
 */

/** A value as plain JSON data: exact integers (bigints within 2^53 as numbers, beyond as digit strings), bytes as base64, dates as ISO text. */
export function normalise(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(normalise);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = normalise(x);
    return out;
  }
  return v;
}

export function show(v: unknown): string {
  if (v === undefined) return 'nothing (undefined)';
  return JSON.stringify(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The differences between `expected` and `actual` under `path`. `exact`: every key of
 * actual must be expected too; otherwise (contains) only expected keys are compared, and
 * an expected null also matches an absent field.
 */
export function diffValues(expected: unknown, actual: unknown, path: string, exact: boolean): string[] {
  if (isObject(expected) && isObject(actual)) {
    const out: string[] = [];
    for (const [k, e] of Object.entries(expected)) {
      const p = `${path}.${k}`;
      if (!(k in actual)) {
        if (!exact && e === null) continue;
        out.push(`- ${p}: ${show(e)}`, `+ ${p}: (absent)`);
      } else out.push(...diffValues(e, actual[k], p, exact));
    }
    if (exact) for (const [k, a] of Object.entries(actual)) if (!(k in expected)) out.push(`- ${path}.${k}: (absent)`, `+ ${path}.${k}: ${show(a)}`);
    return out;
  }
  if (Array.isArray(expected) && Array.isArray(actual) && expected.length === actual.length) {
    return expected.flatMap((e, i) => diffValues(e, actual[i], `${path}[${i}]`, exact));
  }
  if (JSON.stringify(expected) === JSON.stringify(actual)) return [];
  return [`- ${path}: ${show(expected)}`, `+ ${path}: ${show(actual)}`];
}
