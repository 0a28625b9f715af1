import { createRequire } from 'node:module';
import { checkCalls } from './jsonata-functions.js';

/**
 * The expression language of `mapping`, `filter` and `dedupe` as lint sees it: only
 * "does this text compile, and if not, where and why". Behind an interface so lint
 * works (without that check) where the library is not installed, and tests can stand in.
 */
export interface ExpressionLanguage {
  readonly name: string;
  /** Undefined when the text compiles. */
  check(text: string): ExpressionIssue | undefined;
  /** For text that compiles: calls to unknown functions or with the wrong number of arguments. */
  checkCalls?(text: string): ExpressionIssue[];
}

export interface ExpressionIssue {
  message: string;
  /** 0-based offset in the text near which the error was found. */
  offset?: number;
  /** The token at the error, when known. */
  token?: string;
  /** How to fix it, when the language knows better than "correct the expression". */
  fix?: string;
}

type JsonataCompile = (expression: string) => { ast(): unknown };
interface JsonataError {
  message?: string;
  position?: number;
  token?: string;
  code?: string;
}

let cached: ExpressionLanguage | null | undefined;

/**
 * JSONata (`jsonata` on npm), loaded on first use; undefined when the package is not
 * installed. Its compile errors carry `position` (the offset just past the token where
 * parsing failed) and `token`.
 */
export function jsonataLanguage(): ExpressionLanguage | undefined {
  if (cached === undefined) cached = loadJsonata();
  return cached ?? undefined;
}

function loadJsonata(): ExpressionLanguage | null {
  let compile: JsonataCompile;
  try {
    // createRequire keeps this synchronous (lint is) and the package optional until it is a dependency.
    const loaded = createRequire(import.meta.url)('jsonata') as JsonataCompile | { default: JsonataCompile };
    compile = typeof loaded === 'function' ? loaded : loaded.default;
  } catch (error) {
    if ((error as { code?: string }).code === 'MODULE_NOT_FOUND') return null;
    throw error;
  }
  return {
    name: 'JSONata',
    check(text) {
      try {
        compile(text);
        return undefined;
      } catch (error) {
        const e = error as JsonataError;
        return {
          message: `${e.code ? `${e.code}: ` : ''}${e.message ?? String(error)}`,
          ...(typeof e.position === 'number' ? { offset: Math.max(0, e.position - 1) } : {}),
          ...(typeof e.token === 'string' ? { token: e.token } : {}),
        };
      }
    },
    checkCalls(text) {
      return checkCalls(compile(text).ast()).map((c) => ({ message: c.message, offset: c.offset, fix: c.fix }));
    },
  };
}
