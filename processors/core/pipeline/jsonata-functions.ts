import { closest } from './suggest.js';

/**
 * The functions a pipeline expression may call, with how many arguments each takes, so
 * lint catches `$uppercse(x)` and `$substring(s)` before a record does (jsonata compiles
 * both happily and fails only when it evaluates them, record by record, into the DLQ).
 *
 * The signatures are JSONata's own (jsonata 2.x, `defineFunction(fn, '<...>')`);
 * test/unit/pipeline-functions.test.ts checks them against the installed library, so an
 * upgrade that changes one fails there rather than in lint. Sluice registers no functions
 * of its own today: SLUICE_FUNCTIONS is where one would be declared.
 */
export const JSONATA_FUNCTIONS: Readonly<Record<string, string>> = {
  sum: '<a<n>:n>',
  count: '<a:n>',
  max: '<a<n>:n>',
  min: '<a<n>:n>',
  average: '<a<n>:n>',
  string: '<x-b?:s>',
  substring: '<s-nn?:s>',
  substringBefore: '<s-s:s>',
  substringAfter: '<s-s:s>',
  lowercase: '<s-:s>',
  uppercase: '<s-:s>',
  length: '<s-:n>',
  trim: '<s-:s>',
  pad: '<s-ns?:s>',
  match: '<s-f<s:o>n?:a<o>>',
  contains: '<s-(sf):b>',
  replace: '<s-(sf)(sf)n?:s>',
  split: '<s-(sf)n?:a<s>>',
  join: '<a<s>s?:s>',
  formatNumber: '<n-so?:s>',
  formatBase: '<n-n?:s>',
  formatInteger: '<n-s:s>',
  parseInteger: '<s-s:n>',
  number: '<(nsb)-:n>',
  floor: '<n-:n>',
  ceil: '<n-:n>',
  round: '<n-n?:n>',
  abs: '<n-:n>',
  sqrt: '<n-:n>',
  power: '<n-n:n>',
  random: '<:n>',
  boolean: '<x-:b>',
  not: '<x-:b>',
  map: '<af>',
  zip: '<a+>',
  filter: '<af>',
  single: '<af?>',
  reduce: '<afj?:j>',
  sift: '<o-f?:o>',
  keys: '<x-:a<s>>',
  lookup: '<x-s:x>',
  append: '<xx:a>',
  exists: '<x:b>',
  spread: '<x-:a<o>>',
  merge: '<a<o>:o>',
  reverse: '<a:a>',
  each: '<o-f:a>',
  error: '<s?:x>',
  assert: '<bs?:x>',
  type: '<x:s>',
  sort: '<af?:a>',
  shuffle: '<a:a>',
  distinct: '<x:x>',
  base64encode: '<s-:s>',
  base64decode: '<s-:s>',
  encodeUrlComponent: '<s-:s>',
  encodeUrl: '<s-:s>',
  decodeUrlComponent: '<s-:s>',
  decodeUrl: '<s-:s>',
  eval: '<sx?:x>',
  toMillis: '<s-s?:n>',
  fromMillis: '<n-s?s?:s>',
  clone: '<(oa)-:o>',
  now: '<s?s?:s>',
  millis: '<:n>',
};

/** Functions Sluice binds into every expression, in the same signature syntax. */
export const SLUICE_FUNCTIONS: Readonly<Record<string, string>> = {};

export interface Arity {
  min: number;
  /** Infinity for a variadic (`+`) parameter. */
  max: number;
  /** Human form: `$substring(string, number, number?)`. */
  usage: string;
}

const TYPE_NAMES: Record<string, string> = { b: 'boolean', n: 'number', s: 'string', a: 'array', o: 'object', f: 'function', x: 'any', j: 'any', l: 'null', u: 'boolean|number|string|null' };

/**
 * Arity from a JSONata signature: each parameter is a type letter or a `(...)` choice,
 * optionally followed by a `<...>` subtype and modifiers: `?` optional, `+` one or more,
 * `-` taken from the context when the call leaves it out (so `$uppercase()` on a path step
 * is one argument short and fine).
 */
export function arityOf(name: string, signature: string): Arity {
  const body = signature.slice(1, -1);
  let min = 0;
  let max = 0;
  let contextual = false;
  const shown: string[] = [];
  let i = 0;
  while (i < body.length && body[i] !== ':') {
    let type: string;
    if (body[i] === '(') {
      const close = body.indexOf(')', i);
      type = [...body.slice(i + 1, close)].map((t) => TYPE_NAMES[t] ?? t).join('|');
      i = close + 1;
    } else {
      type = TYPE_NAMES[body[i]!] ?? body[i]!;
      i++;
    }
    if (body[i] === '<') {
      let depth = 0;
      do {
        if (body[i] === '<') depth++;
        else if (body[i] === '>') depth--;
        i++;
      } while (depth > 0 && i < body.length);
    }
    let optional = false;
    let variadic = false;
    while (i < body.length && '?+-'.includes(body[i]!)) {
      if (body[i] === '?') optional = true;
      if (body[i] === '+') variadic = true;
      if (body[i] === '-' && shown.length === 0) contextual = true;
      i++;
    }
    shown.push(`${type}${optional ? '?' : ''}${variadic ? '...' : ''}`);
    if (!optional) min++;
    max = variadic ? Infinity : max + 1;
  }
  return { min: contextual ? Math.max(0, min - 1) : min, max, usage: `$${name}(${shown.join(', ')})` };
}

export const KNOWN_FUNCTIONS: ReadonlyMap<string, Arity> = new Map(
  Object.entries({ ...JSONATA_FUNCTIONS, ...SLUICE_FUNCTIONS }).map(([name, sig]) => [name, arityOf(name, sig)]),
);

export interface CallIssue {
  /** 0-based offset of the `$` of the function name in the expression text. */
  offset: number;
  message: string;
  fix: string;
}

interface AstNode {
  type?: string;
  value?: unknown;
  position?: number;
  procedure?: AstNode;
  arguments?: AstNode[];
  lhs?: unknown;
  rhs?: unknown;
  [k: string]: unknown;
}

/**
 * Every call in a parsed JSONata expression (jsonata's `ast()`) to a function that does
 * not exist or with a number of arguments it does not take. A name the expression binds
 * itself (`$f := function($x) {...}`, a lambda's parameter) is the expression's business
 * and is not checked.
 */
export function checkCalls(ast: unknown): CallIssue[] {
  const bound = new Set<string>();
  collectBound(ast, bound, 0);
  const issues: CallIssue[] = [];
  const visit = (node: unknown, depth: number, piped: boolean): void => {
    if (depth > 500 || node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const item of node) visit(item, depth + 1, false);
      return;
    }
    const n = node as AstNode;
    if ((n.type === 'function' || n.type === 'partial') && n.procedure?.type === 'variable') {
      const name = String(n.procedure.value);
      const issue = checkCall(name, (n.arguments ?? []).length + (piped ? 1 : 0), n.procedure.position);
      if (issue && !bound.has(name)) issues.push(issue);
    }
    for (const [key, child] of Object.entries(n)) {
      // `x ~> $f(a)` calls $f(x, a): the right side of an apply has one argument more.
      visit(child, depth + 1, n.type === 'apply' && key === 'rhs');
    }
  };
  visit(ast, 0, false);
  return issues.sort((a, b) => a.offset - b.offset);
}

function checkCall(name: string, args: number, position: number | undefined): CallIssue | undefined {
  // jsonata's position is just past the name; the `$` is name.length + 1 before it.
  const offset = Math.max(0, (position ?? 0) - name.length - 1);
  const arity = KNOWN_FUNCTIONS.get(name);
  if (!arity) {
    const near = closest(name, KNOWN_FUNCTIONS.keys());
    return {
      offset,
      message: `unknown function $${name}`,
      fix: near !== undefined ? `did you mean $${near}? (${KNOWN_FUNCTIONS.get(near)!.usage})` : 'see the functions at https://docs.jsonata.org/string-functions (and the pages beside it), or bind your own with $name := function($x) {...}',
    };
  }
  if (args < arity.min || args > arity.max) {
    const takes = arity.max === Infinity ? `at least ${arity.min}` : arity.min === arity.max ? `${arity.min}` : `${arity.min} to ${arity.max}`;
    return {
      offset,
      message: `$${name} takes ${takes} argument${takes === '1' ? '' : 's'}, not ${args}`,
      fix: `call it as ${arity.usage} (a trailing ? is optional; a first argument left out is the context value)`,
    };
  }
  return undefined;
}

function collectBound(node: unknown, bound: Set<string>, depth: number): void {
  if (depth > 500 || node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const item of node) collectBound(item, bound, depth + 1);
    return;
  }
  const n = node as AstNode;
  if (n.type === 'bind' && (n.lhs as AstNode | undefined)?.type === 'variable') bound.add(String((n.lhs as AstNode).value));
  if (n.type === 'lambda') for (const a of n.arguments ?? []) if (a.type === 'variable') bound.add(String(a.value));
  for (const child of Object.values(n)) collectBound(child, bound, depth + 1);
}
