import jsonata from 'jsonata';

/**
 * JSONata expressions for the export's processors, evaluated fast.
 *
 * The jsonata package interprets its AST through async generators: ~40 µs for the lake's
 * mapping, which alone would cap a pipeline near 25k records/s on one core. Most pipeline
 * expressions use a small, plain part of the language (field paths, `*` over a union, an
 * object constructor, a block with `$x :=` bindings, comparisons, `and`/`or`, `? :`,
 * arithmetic on numbers, `&`, and string functions), so that part is compiled to JS
 * closures once, at start. Anything outside it makes the whole expression use jsonata.
 *
 * The compiled form stays exact by giving up on a record rather than guessing: wherever
 * JSONata's semantics get subtle (an array in a path, which JSONata flattens into a
 * sequence; a BigInt in arithmetic; a type error whose message JSONata words), it throws
 * FALLBACK and that record is evaluated by jsonata itself. test/unit/export-expressions
 * checks both agree on a corpus of expressions and inputs.
 */

export interface CompiledExpression {
  /** Whether the expression runs compiled (false: every record goes through jsonata). */
  readonly compiled: boolean;
  evaluate(input: unknown): unknown;
}

const FALLBACK = Symbol('fallback to jsonata');

type Scope = Map<string, unknown>;
type Fn = (input: unknown, scope: Scope) => unknown;

interface Node {
  type: string;
  value?: unknown;
  steps?: Node[];
  expressions?: Node[];
  lhs?: Node | [Node, Node][];
  rhs?: Node;
  arguments?: Node[];
  procedure?: Node;
  condition?: Node;
  then?: Node;
  else?: Node;
  [k: string]: unknown;
}

class Unsupported extends Error {}

/** Compiles `text`; evaluate() returns a value or a promise (jsonata's path). */
export function compileExpression(text: string): CompiledExpression {
  const full = jsonata(text);
  let fast: Fn | undefined;
  try {
    fast = compileNode(full.ast() as Node);
  } catch (error) {
    if (!(error instanceof Unsupported)) throw error;
  }
  if (!fast) return { compiled: false, evaluate: (input) => full.evaluate(input) };
  const f = fast;
  return {
    compiled: true,
    evaluate(input) {
      if (Array.isArray(input)) return full.evaluate(input);
      try {
        return f(input, new Map());
      } catch (error) {
        if (error === FALLBACK) return full.evaluate(input);
        throw error;
      }
    },
  };
}

const PATH_STEP_EXTRAS = ['stages', 'predicate', 'group', 'focus', 'tuple', 'index', 'ancestor', 'keepArray', 'consarray', 'nextFunction'];

function compileNode(node: Node): Fn {
  switch (node.type) {
    case 'string':
    case 'number': {
      const v = node.value;
      return () => v;
    }
    case 'value': {
      const v = node.value; // true, false, null
      return () => v;
    }
    case 'path':
      return compilePath(node);
    case 'name':
      return compilePath({ type: 'path', steps: [node] });
    case 'variable':
      return compilePath({ type: 'path', steps: [node] });
    case 'block': {
      const parts = (node.expressions ?? []).map(compileNode);
      return (input, scope) => {
        const inner = new Map(scope);
        let result: unknown;
        for (const p of parts) result = p(input, inner);
        return result;
      };
    }
    case 'bind': {
      const lhs = node.lhs as Node;
      if (lhs.type !== 'variable') throw new Unsupported();
      const name = String(lhs.value);
      const rhs = compileNode(node.rhs!);
      return (input, scope) => {
        const v = rhs(input, scope);
        scope.set(name, v);
        return v;
      };
    }
    case 'unary':
      if (node.value === '{') return compileObject(node.lhs as [Node, Node][]);
      if (node.value === '-') {
        const operand = compileNode(node.expression as Node);
        return (input, scope) => {
          const v = operand(input, scope);
          if (v === undefined) return undefined;
          if (typeof v !== 'number') throw FALLBACK;
          return -v;
        };
      }
      throw new Unsupported();
    case 'condition': {
      const c = compileNode(node.condition!);
      const t = compileNode(node.then!);
      const e = node.else ? compileNode(node.else) : undefined;
      return (input, scope) => (truthy(c(input, scope)) ? t(input, scope) : e ? e(input, scope) : undefined);
    }
    case 'binary':
      return compileBinary(node);
    case 'function':
      return compileCall(node);
    default:
      throw new Unsupported();
  }
}

function compilePath(node: Node): Fn {
  const steps = node.steps ?? [];
  if (steps.length === 0 || PATH_STEP_EXTRAS.some((k) => k in node)) throw new Unsupported();
  const ops: ((v: unknown, input: unknown, scope: Scope) => unknown)[] = steps.map((step, i) => {
    if (PATH_STEP_EXTRAS.some((k) => k in step)) throw new Unsupported();
    switch (step.type) {
      case 'name': {
        const name = String(step.value);
        return (v) => field(v, name);
      }
      case 'wildcard':
        return (v) => wildcard(v);
      case 'variable': {
        if (i !== 0) throw new Unsupported();
        const name = String(step.value);
        if (name === '') return (_v, input) => input; // `$`: the context
        return (_v, _input, scope) => {
          if (!scope.has(name)) throw FALLBACK; // a built-in or an outer binding: jsonata knows
          return checkPlain(scope.get(name));
        };
      }
      case 'string':
      case 'number':
      case 'value':
        if (steps.length !== 1) throw new Unsupported();
        return () => step.value;
      default:
        throw new Unsupported();
    }
  });
  return (input, scope) => {
    let v: unknown = input;
    for (const op of ops) {
      v = op(v, input, scope);
      if (v === undefined) return undefined;
    }
    return v;
  };
}

function field(v: unknown, name: string): unknown {
  if (v === null || typeof v !== 'object') return undefined;
  if (Array.isArray(v)) throw FALLBACK; // JSONata maps over arrays and flattens: leave it to jsonata
  if (v instanceof Uint8Array || v instanceof Date) throw FALLBACK;
  return checkPlain((v as Record<string, unknown>)[name]);
}

/** `*`: the values of an object; a single one is that value, several form a sequence (jsonata's business). */
function wildcard(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return undefined;
  if (Array.isArray(v) || v instanceof Uint8Array || v instanceof Date) throw FALLBACK;
  let found: unknown = undefined;
  let n = 0;
  for (const value of Object.values(v as Record<string, unknown>)) {
    if (value === undefined) continue;
    found = value;
    n++;
  }
  if (n > 1) throw FALLBACK;
  return checkPlain(found);
}

/** Values a compiled expression may hold: anything but arrays (sequence semantics) and functions. */
function checkPlain(v: unknown): unknown {
  if (Array.isArray(v) || typeof v === 'function') throw FALLBACK;
  return v;
}

function compileObject(pairs: [Node, Node][]): Fn {
  const compiled = pairs.map(([k, v]) => {
    if (k.type !== 'string') throw new Unsupported();
    return [String(k.value), compileNode(v)] as const;
  });
  const keys = new Set(compiled.map(([k]) => k));
  if (keys.size !== compiled.length) throw new Unsupported(); // duplicate keys: jsonata's error
  return (input, scope) => {
    const out: Record<string, unknown> = {};
    for (const [k, f] of compiled) {
      const v = f(input, scope);
      if (v !== undefined) out[k] = v;
    }
    return out;
  };
}

function compileBinary(node: Node): Fn {
  const op = String(node.value);
  const l = compileNode(node.lhs as Node);
  const r = compileNode(node.rhs!);
  switch (op) {
    case 'and':
      return (input, scope) => truthy(l(input, scope)) && truthy(r(input, scope));
    case 'or':
      return (input, scope) => truthy(l(input, scope)) || truthy(r(input, scope));
    case '=':
    case '!=':
      return (input, scope) => {
        const a = l(input, scope);
        const b = r(input, scope);
        if (a === undefined || b === undefined) return false;
        if (!isScalar(a) || !isScalar(b)) throw FALLBACK;
        return op === '=' ? a === b : a !== b;
      };
    case '<':
    case '<=':
    case '>':
    case '>=':
      return (input, scope) => {
        const a = l(input, scope);
        const b = r(input, scope);
        if (a === undefined || b === undefined) return undefined;
        if (!((typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string'))) throw FALLBACK;
        return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
      };
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
      return (input, scope) => {
        const a = l(input, scope);
        const b = r(input, scope);
        if (a === undefined || b === undefined) return undefined;
        if (typeof a !== 'number' || typeof b !== 'number') throw FALLBACK;
        const v = op === '+' ? a + b : op === '-' ? a - b : op === '*' ? a * b : op === '/' ? a / b : a % b;
        if (!Number.isFinite(v)) throw FALLBACK;
        return v;
      };
    case '&':
      return (input, scope) => text(l(input, scope)) + text(r(input, scope));
    default:
      throw new Unsupported();
  }
}

function isScalar(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v === null;
}

/** JSONata's boolean cast, for the values whose cast is plain. */
function truthy(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  throw FALLBACK;
}

/** `&` and $string of a scalar: strings as they are, integers in plain notation. */
function text(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'boolean') return String(v);
  throw FALLBACK;
}

type Builtin = (args: unknown[]) => unknown;

const str = (v: unknown): string | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw FALLBACK; // jsonata words the type error
  return v;
};

const BUILTINS: Record<string, { arity: number[]; fn: Builtin }> = {
  substringAfter: {
    arity: [2],
    fn: ([s, chars]) => {
      const t = str(s);
      const c = str(chars);
      if (t === undefined || c === undefined) return t === undefined ? undefined : FALLBACK_VALUE();
      const i = t.indexOf(c);
      return i > -1 ? t.slice(i + c.length) : t;
    },
  },
  substringBefore: {
    arity: [2],
    fn: ([s, chars]) => {
      const t = str(s);
      const c = str(chars);
      if (t === undefined || c === undefined) return t === undefined ? undefined : FALLBACK_VALUE();
      const i = t.indexOf(c);
      return i > -1 ? t.slice(0, i) : t;
    },
  },
  decodeUrlComponent: {
    arity: [1],
    fn: ([s]) => {
      const t = str(s);
      if (t === undefined) return undefined;
      try {
        return decodeURIComponent(t);
      } catch {
        throw FALLBACK; // jsonata raises its own error
      }
    },
  },
  lowercase: { arity: [1], fn: ([s]) => str(s)?.toLowerCase() },
  uppercase: { arity: [1], fn: ([s]) => str(s)?.toUpperCase() },
  trim: {
    arity: [1],
    fn: ([s]) => {
      const t = str(s);
      return t === undefined ? undefined : t.replace(/[ \t\n\r]+/gm, ' ').trim();
    },
  },
  length: {
    arity: [1],
    fn: ([s]) => {
      const t = str(s);
      return t === undefined ? undefined : Array.from(t).length;
    },
  },
  contains: {
    arity: [2],
    fn: ([s, c]) => {
      const t = str(s);
      if (t === undefined) return undefined;
      if (typeof c !== 'string') throw FALLBACK; // a regex or a type error
      return t.includes(c);
    },
  },
  exists: { arity: [1], fn: ([v]) => v !== undefined },
  string: {
    arity: [1],
    fn: ([v]) => (v === undefined ? undefined : text(v)),
  },
  error: {
    arity: [0, 1],
    fn: () => {
      throw FALLBACK; // let jsonata raise it, with its code and wording
    },
  },
};

function FALLBACK_VALUE(): never {
  throw FALLBACK;
}

function compileCall(node: Node): Fn {
  const proc = node.procedure;
  if (!proc || proc.type !== 'variable') throw new Unsupported();
  const builtin = BUILTINS[String(proc.value)];
  const args = (node.arguments ?? []).map(compileNode);
  if (!builtin || !builtin.arity.includes(args.length)) throw new Unsupported();
  const name = String(proc.value);
  return (input, scope) => {
    if (scope.has(name)) throw FALLBACK; // the name is rebound to something else
    return builtin.fn(args.map((a) => a(input, scope)));
  };
}
