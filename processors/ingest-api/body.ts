import { isLosslessNumber, parse, type LosslessNumber } from 'lossless-json';

/**
 * Request bodies: JSON parsed without losing a digit (every number stays the literal
 * the client wrote, as a LosslessNumber, so `9007199254740993` is not rounded and
 * `1.00` is not silently 1), and the shape POST /events accepts.
 */

export type Json = unknown;

export class MalformedJsonError extends Error {
  override readonly name = 'MalformedJsonError';
}

/** Parses JSON text losslessly; throws MalformedJsonError with the parser's reason. */
export function parseJsonBody(text: string): Json {
  if (text.trim() === '') throw new MalformedJsonError('the body is empty; send a JSON event object or a JSON array of events');
  try {
    // Duplicate keys with different values are an error here: which one did the client mean?
    return parse(text);
  } catch (error) {
    // Deeply nested input overflows the parser's stack: a RangeError, also not JSON we take.
    throw new MalformedJsonError(`not valid JSON: ${(error as Error).message}`);
  }
}

export const isJsonObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/**
 * POST /events takes ONE event as a JSON object, or a BATCH as a non-empty JSON array of
 * event objects. Anything else is the wrong shape (400).
 */
export function eventsOf(body: Json): { events: Record<string, unknown>[]; batch: boolean } | { problem: string } {
  if (isJsonObject(body)) return { events: [body], batch: false };
  if (!Array.isArray(body)) {
    return { problem: `the body is ${describeJsonType(body)}; send one event as a JSON object or a batch as a JSON array of event objects` };
  }
  if (body.length === 0) return { problem: 'the batch is empty; send at least one event' };
  const bad = body.findIndex((e) => !isJsonObject(e));
  if (bad >= 0) return { problem: `batch element ${bad} is ${describeJsonType(body[bad])}; every element must be an event object` };
  return { events: body as Record<string, unknown>[], batch: true };
}

export function describeJsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return isNumberLiteral(v) ? 'a number' : 'an object';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'boolean') return 'a boolean';
  return `a ${typeof v}`;
}

/** A JSON number as the client wrote it (lossless-json keeps the literal text in `.value`). */
export function isNumberLiteral(v: unknown): v is LosslessNumber {
  return isLosslessNumber(v);
}
