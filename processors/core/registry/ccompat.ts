import { PermanentError, TransientError } from '../errors/errors.js';

/**
 * The registry calls Sluice makes over the Confluent REST API, written so they work the
 * same on Confluent Schema Registry and on Apicurio Registry's ccompat API. This file is
 * the one place that bridges their differences; everything else (encode/decode by id)
 * goes through @kafkajs/confluent-schema-registry unchanged. Gaps found against Apicurio
 * 3.3 (test/integration/registry-ccompat.test.ts keeps them proven):
 *
 * - GET /config/{subject} on a subject without a level of its own answers 200 with the
 *   global level, where Confluent answers 404. The library's `register(schema,
 *   {compatibility})` reads that as a mismatch and throws. Here the subject's level is
 *   compared and set explicitly (PUT /config/{subject} works before the first version).
 * - POST /compatibility/...?verbose=true returns no `messages`: the offline check
 *   (`sluice schemas check`) supplies the field-level reason.
 * - POST /compatibility/subjects/{s}/versions/latest checks against the latest version only,
 *   even under a _TRANSITIVE level (Confluent: the same), and .../versions (no version)
 *   checks against every version even under a non-transitive level (Confluent: follows the
 *   level). `checkCompatible(..., 'all')` is for transitive levels, 'latest' for the others.
 * - A schema that differs only in `doc` maps to the existing version instead of a new one.
 */
export type CompatibilityLevel =
  | 'NONE'
  | 'BACKWARD'
  | 'BACKWARD_TRANSITIVE'
  | 'FORWARD'
  | 'FORWARD_TRANSITIVE'
  | 'FULL'
  | 'FULL_TRANSITIVE';

export class SchemaIncompatibleError extends PermanentError {
  constructor(
    readonly subject: string,
    readonly details: string,
  ) {
    super(`schema for subject ${subject} is incompatible with its earlier versions: ${details}`);
  }
}

export interface RegistryAuth {
  username?: string | undefined;
  password?: string | undefined;
}

export class RegistryRestClient {
  private readonly base: string;
  constructor(
    baseUrl: string,
    private readonly auth: RegistryAuth = {},
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = { accept: 'application/vnd.schemaregistry.v1+json, application/json' };
    if (body !== undefined) headers['content-type'] = 'application/vnd.schemaregistry.v1+json';
    if (this.auth.username) {
      headers.authorization = 'Basic ' + Buffer.from(`${this.auth.username}:${this.auth.password ?? ''}`).toString('base64');
    }
    let res: Response;
    try {
      res = await fetch(this.base + path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (error) {
      throw new TransientError(`schema registry at ${this.base} is unreachable: ${(error as Error).message}`, { cause: error });
    }
    const text = await res.text();
    if (res.status >= 500) throw new TransientError(`schema registry ${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed as T };
  }

  /** Registers (or finds) the schema under the subject and returns its id for the wire format. */
  async register(subject: string, schema: string): Promise<number> {
    const { status, body } = await this.request<{ id?: number; message?: string; error_code?: number }>(
      'POST',
      `/subjects/${encodeURIComponent(subject)}/versions`,
      { schema, schemaType: 'AVRO' },
    );
    if (status === 409) throw new SchemaIncompatibleError(subject, body?.message ?? JSON.stringify(body));
    if (status !== 200 || typeof body?.id !== 'number') {
      throw new PermanentError(`registry refused schema for ${subject} (${status}): ${body?.message ?? JSON.stringify(body)}`);
    }
    return body.id;
  }

  /** The subject's own compatibility level, or undefined when it has none (global applies). */
  async subjectLevel(subject: string): Promise<CompatibilityLevel | undefined> {
    const { status, body } = await this.request<{ compatibilityLevel?: string; compatibility?: string }>(
      'GET',
      `/config/${encodeURIComponent(subject)}`,
    );
    if (status === 404) return undefined;
    const level = body?.compatibilityLevel ?? body?.compatibility;
    return level ? (level.toUpperCase() as CompatibilityLevel) : undefined;
  }

  /** Sets the subject's level (allowed before its first version, on Apicurio 3.3 and Confluent). */
  async setSubjectLevel(subject: string, level: CompatibilityLevel): Promise<void> {
    const { status, body } = await this.request<{ message?: string }>('PUT', `/config/${encodeURIComponent(subject)}`, {
      compatibility: level,
    });
    if (status !== 200) throw new PermanentError(`registry refused level ${level} for ${subject} (${status}): ${body?.message ?? JSON.stringify(body)}`);
  }

  /**
   * Asks the registry whether `schema` may follow the subject's versions under its level:
   * against the latest version (non-transitive levels) or against all of them (transitive).
   */
  async checkCompatible(subject: string, schema: string, against: 'latest' | 'all' = 'latest'): Promise<{ compatible: boolean; messages: string[] }> {
    const { status, body } = await this.request<{ is_compatible?: boolean; messages?: string[]; message?: string }>(
      'POST',
      `/compatibility/subjects/${encodeURIComponent(subject)}/versions${against === 'latest' ? '/latest' : ''}?verbose=true`,
      { schema, schemaType: 'AVRO' },
    );
    if (status === 404) return { compatible: true, messages: ['subject has no versions yet'] };
    if (status !== 200) throw new PermanentError(`registry compatibility check for ${subject} failed (${status}): ${body?.message ?? JSON.stringify(body)}`);
    return { compatible: body?.is_compatible === true, messages: body?.messages ?? [] };
  }

  /** The subject's version numbers, or undefined when the subject does not exist. */
  async subjectVersions(subject: string): Promise<number[] | undefined> {
    const { status, body } = await this.request<number[] | { message?: string }>('GET', `/subjects/${encodeURIComponent(subject)}/versions`);
    if (status === 404) return undefined;
    if (status !== 200 || !Array.isArray(body)) throw new PermanentError(`registry listing versions of ${subject} failed (${status}): ${JSON.stringify(body)}`);
    return body;
  }

  /** The version and id `schema` has under the subject, or undefined when it is not registered there. */
  async lookup(subject: string, schema: string): Promise<{ version: number; id: number } | undefined> {
    const { status, body } = await this.request<{ version?: number; id?: number; message?: string }>(
      'POST',
      `/subjects/${encodeURIComponent(subject)}`,
      { schema, schemaType: 'AVRO' },
    );
    if (status === 404) return undefined;
    if (status !== 200 || typeof body?.version !== 'number' || typeof body.id !== 'number') {
      throw new PermanentError(`registry lookup of a schema under ${subject} failed (${status}): ${body?.message ?? JSON.stringify(body)}`);
    }
    return { version: body.version, id: body.id };
  }

  async subjects(): Promise<string[]> {
    const { body } = await this.request<string[]>('GET', '/subjects');
    return body ?? [];
  }
}

/**
 * Registers a schema under a subject that carries `level`: the level is put in place
 * first, so even the second version is checked under it, never under the global default.
 */
export async function registerWithLevel(client: RegistryRestClient, subject: string, schema: string, level: CompatibilityLevel): Promise<number> {
  if ((await client.subjectLevel(subject)) !== level) await client.setSubjectLevel(subject, level);
  return client.register(subject, schema);
}
