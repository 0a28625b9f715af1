import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
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

/**
 * Query parameter names that carry a key or token, compared in lower case without `-`
 * and `_` (api_key, apiKey, API-KEY, X-API-Key, key, access_token...).
 */
const KEY_PARAMETERS = new Set(['apikey', 'xapikey', 'key', 'apitoken', 'token', 'accesstoken', 'authtoken', 'auth', 'authorization', 'accesskey', 'secret', 'password']);

/** The name of the first query parameter of `url` that carries a key, or undefined. */
export function keyParameterIn(url: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  for (const name of new URLSearchParams(url.slice(q + 1)).keys()) {
    if (KEY_PARAMETERS.has(name.toLowerCase().replace(/[-_]/g, ''))) return name;
  }
  return undefined;
}

/** The 400 answer refuseKeyInQuery gives, as the OpenAPI documents of the APIs using it describe it. */
export const KEY_IN_QUERY_REFUSAL =
  'An API key or token in the query string (a parameter such as api_key, apiKey, key, token or access_token) is refused with 400 before any other check, and never logged: send the key in the X-API-Key header only.';

/**
 * Refuses (400) a request whose query string carries a key, before any key check: keys
 * belong in the X-API-Key header, because URLs end up in access logs, proxies and
 * browser history. The refusal names the parameter, never its value.
 */
export function refuseKeyInQuery(app: FastifyInstance, body: (message: string) => object): void {
  app.addHook('onRequest', async (request, reply) => {
    const name = keyParameterIn(request.url);
    if (name !== undefined) {
      return reply.code(400).send(body(`a key in the query string (parameter "${name}") is refused: send it in the X-API-Key header, never in the URL`));
    }
  });
}
