import Fastify from 'fastify';

/**
 * Checks JSON bodies against the request and response schemas of an OpenAPI document,
 * with the JSON Schema validator Fastify ships (Ajv, formats included), so a test can
 * prove that the API and its document agree. One throwaway route per documented body;
 * a check posts the body to it and returns the validator's complaint, if any.
 */
export interface OpenApiSchemaCheck {
  /** undefined when the body matches, else the validator's message. */
  check(method: string, path: string, status: number, body: unknown): Promise<string | undefined>;
  /** Whether the document gives a JSON schema for this response. */
  has(method: string, path: string, status: number): boolean;
  /** Like check, for a request body given as JSON text (so any number literal can be tried). */
  checkRequest(method: string, path: string, json: string): Promise<string | undefined>;
  close(): Promise<void>;
}

interface OpenApiDocument {
  paths: Record<string, Record<string, { responses?: Record<string, unknown>; requestBody?: unknown }>>;
  components?: { schemas?: Record<string, unknown> };
}

type Response = { content?: Record<string, { schema?: unknown }> } | undefined;

export async function openApiSchemaCheck(document: object): Promise<OpenApiSchemaCheck> {
  const doc = document as OpenApiDocument;
  // Validate as written: no type coercion, nothing removed, defaults not filled in.
  const app = Fastify({ logger: false, ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, strict: false } } });
  // OpenAPI's #/components/schemas/X becomes a reference into one shared schema.
  const rewrite = (schema: unknown): unknown =>
    JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"openapi#/definitions/').replaceAll('"example":', '"x-example":'));
  app.addSchema({ $id: 'openapi', definitions: rewrite(doc.components?.schemas ?? {}) });
  const routes = new Map<string, string>();
  let n = 0;
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const requestSchema = (op.requestBody as Response)?.content?.['application/json']?.schema;
      if (requestSchema) {
        const url = `/check/${n++}`;
        routes.set(`${method.toUpperCase()} ${path} request`, url);
        app.post(url, { schema: { body: rewrite(requestSchema) as object } }, async () => ({ ok: true }));
      }
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        const schema = (response as Response)?.content?.['application/json']?.schema;
        if (!schema) continue;
        const url = `/check/${n++}`;
        routes.set(`${method.toUpperCase()} ${path} ${status}`, url);
        app.post(url, { schema: { body: rewrite(schema) as object } }, async () => ({ ok: true }));
      }
    }
  }
  await app.ready();
  const validate = async (key: string, payload: string): Promise<string | undefined> => {
    const url = routes.get(key);
    if (!url) return `no JSON schema documented for ${key}`;
    const answer = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload });
    return answer.statusCode === 200 ? undefined : (answer.json() as { message: string }).message;
  };
  return {
    has: (method, path, status) => routes.has(`${method} ${path} ${status}`),
    check: (method, path, status, body) => validate(`${method} ${path} ${status}`, JSON.stringify(body)),
    checkRequest: (method, path, json) => validate(`${method} ${path} request`, json),
    close: () => app.close(),
  };
}
