import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/**
 * API-key check in constant time. Both sides are hashed first, so the comparison takes
 * the same time whatever the key's length, and every configured key is compared (no
 * early exit that would tell which one nearly matched).
 */
export class ApiKeyCheck {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    if (keys.length === 0) throw new Error('at least one API key is required');
    this.digests = keys.map(digest);
  }

  accepts(presented: string | string[] | undefined): boolean {
    if (typeof presented !== 'string' || presented === '') return false;
    const d = digest(presented);
    let ok = false;
    for (const key of this.digests) ok = timingSafeEqual(key, d) || ok;
    return ok;
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** At least this long: a key someone could guess is no key. */
export const MIN_API_KEY_LENGTH = 16;

/** A setting holding one or more comma-separated API keys (several at once for a rotation). */
export const apiKeysSetting = z
  .string()
  .transform((s) => s.split(',').map((k) => k.trim()).filter(Boolean))
  .pipe(z.array(z.string().min(MIN_API_KEY_LENGTH, `each key needs at least ${MIN_API_KEY_LENGTH} characters`)).min(1, 'at least one key'));
