import { readFileSync } from 'node:fs';
import { PermanentError, TransientError } from '../errors/errors.js';

export interface ConnectorSpec {
  name: string;
  config: Record<string, string>;
}

export interface ConnectorStatus {
  name: string;
  connector: { state: string; worker_id: string; trace?: string };
  tasks: { id: number; state: string; worker_id: string; trace?: string }[];
}

/**
 * Reads a connector file (`{name, config}` as Connect's REST API takes it) and fills
 * `${VAR}` and `${VAR:default}` placeholders (the pipeline files' syntax: the default is
 * everything after the first colon, so `${X:-1}` defaults to -1) from `vars`; an empty
 * value counts as unset, and a placeholder with no value and no default is an error naming
 * it. Lower-case references such as `${file:...}` or `${env:...}` are Kafka Connect's
 * config providers and are left for the worker to resolve.
 * Secrets are never filled in: a config key that holds one (a password, a secret, a JAAS
 * config) must be such a reference, because Connect's REST API shows every connector's
 * config to anyone who can reach it.
 */
export function loadConnectorSpec(file: string, vars: Record<string, string | undefined>): ConnectorSpec {
  const text = readFileSync(file, 'utf8');
  const missing = new Set<string>();
  const filled = text.replace(/\$\{([A-Z][A-Z0-9_]*)(?::([^}]*))?\}/g, (_, name: string, fallback: string | undefined) => {
    const v = (vars[name] === '' ? undefined : vars[name]) ?? fallback;
    if (v === undefined) {
      missing.add(name);
      return '';
    }
    return JSON.stringify(v).slice(1, -1);
  });
  if (missing.size > 0) {
    throw new PermanentError(`${file}: no value for ${[...missing].map((m) => '${' + m + '}').join(', ')}; set it in the environment`);
  }
  const spec = JSON.parse(filled) as ConnectorSpec;
  if (!spec.name || typeof spec.config !== 'object') throw new PermanentError(`${file}: expected {"name": ..., "config": {...}}`);
  const plain = Object.entries(spec.config).filter(([key, value]) => SECRET_KEY.test(key) && !PROVIDER_REFERENCE.test(value));
  if (plain.length > 0) {
    throw new PermanentError(
      `${file}: ${plain.map(([k]) => `"${k}"`).join(', ')} must be a config-provider reference, not a value (Kafka Connect's REST API shows connector configs to anyone who can reach it); ` +
        'write "${env:SLUICE_CONNECT_DATABASE_PASSWORD}" (EnvVarConfigProvider) or "${file:/path/secrets.properties:database.password}" (FileConfigProvider) and give the secret to the Connect worker',
    );
  }
  return spec;
}

/** Config keys that hold a secret. */
const SECRET_KEY = /(password|secret|credentials|sasl\.jaas\.config|api\.key|token)$/i;
/** A whole value that is one config-provider reference: ${provider:[path:]key}. */
const PROVIDER_REFERENCE = /^\$\{[A-Za-z][\w.-]*:[^}]+\}$/;

/**
 * The standard libpq variables from a postgres:// URL, for connector placeholders. The
 * password is left out on purpose: connectors take it by reference (loadConnectorSpec).
 */
export function pgVarsFromUrl(url: string): Record<string, string> {
  const u = new URL(url);
  return {
    PGHOST: u.hostname,
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username),
    PGDATABASE: u.pathname.replace(/^\//, '') || 'postgres',
  };
}

/** A small client of Kafka Connect's REST API. */
export class ConnectClient {
  constructor(private readonly baseUrl: string) {}

  private async request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      throw new TransientError(`Kafka Connect at ${this.baseUrl} is unreachable: ${(error as Error).message}`, { cause: error });
    }
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as T) : (undefined as T);
    if (res.status >= 500 || res.status === 409) {
      // 409: a rebalance is in progress; Connect says to try again.
      throw new TransientError(`Kafka Connect ${method} ${path} answered ${res.status}: ${text}`);
    }
    return { status: res.status, body: parsed };
  }

  /** Creates or updates the connector (PUT is idempotent); returns whether it was new. */
  async apply(spec: ConnectorSpec): Promise<{ created: boolean }> {
    const { status, body } = await this.request<{ message?: string }>('PUT', `/connectors/${encodeURIComponent(spec.name)}/config`, spec.config);
    if (status === 201) return { created: true };
    if (status === 200) return { created: false };
    const message = body?.message ?? JSON.stringify(body);
    // Connect resolves config-provider references while validating: an unresolved password reference fails the login.
    const hint = /password authentication failed/i.test(message)
      ? '; if the password is a ${env:...} or ${file:...} reference, the Connect worker must enable config.providers and hold the secret (README "Debezium connector"; the local stack: infra/local/stack down connect && infra/local/stack up connect)'
      : '';
    throw new PermanentError(`Kafka Connect rejected ${spec.name} (${status}): ${message}${hint}`);
  }

  async status(name: string): Promise<ConnectorStatus | undefined> {
    const { status, body } = await this.request<ConnectorStatus>('GET', `/connectors/${encodeURIComponent(name)}/status`);
    if (status === 404) return undefined;
    return body;
  }

  async plugins(): Promise<{ class: string; type: string; version: string }[]> {
    return (await this.request<{ class: string; type: string; version: string }[]>('GET', '/connector-plugins')).body;
  }

  async delete(name: string): Promise<void> {
    await this.request('DELETE', `/connectors/${encodeURIComponent(name)}`);
  }
}
