import avro from 'avsc';
import { readFileSync } from 'node:fs';
import { exactLongHook } from '../../core/registry/codec.js';
import type { SchemaLookup } from '../decoder.js';

/**
 * The schema registry of `sluice test`: schema files registered in memory and answered
 * through the same two Confluent REST calls the export's decoder makes against a real
 * registry (`GET /schemas/ids/{id}`, `GET /subjects/{subject}/versions/latest`), so a test
 * record goes through the real decoding (wire format, reader = newest schema of the
 * subject, wrapped unions, exact longs) with no server.
 */
export class LocalSchemas implements SchemaLookup {
  private readonly ids = new Map<string, number>();
  private readonly texts = new Map<number, string>();
  private readonly latest = new Map<string, number>();
  private readonly types = new Map<number, avro.Type>();

  /** Registers the schema of `file` under `<topic>-value` (the newest from now on); returns its id. */
  register(topic: string, file: string): number {
    const text = JSON.stringify(JSON.parse(readFileSync(file, 'utf8')));
    let id = this.ids.get(text);
    if (id === undefined) {
      id = this.ids.size + 1;
      this.ids.set(text, id);
      this.texts.set(id, text);
    }
    this.latest.set(`${topic}-value`, id);
    return id;
  }

  /** The Confluent wire format of `value` written with schema `id`. Throws when the value does not fit the schema. */
  encode(id: number, value: unknown): Buffer {
    let type = this.types.get(id);
    if (!type) {
      type = avro.Type.forSchema(JSON.parse(this.texts.get(id)!) as avro.Schema, { typeHook: exactLongHook as never, wrapUnions: 'auto' });
      this.types.set(id, type);
    }
    const paths: string[] = [];
    if (!type.isValid(value, { errorHook: (path) => paths.push(path.join('.') || '(record)') })) {
      throw new Error(`the value does not fit the Avro schema at ${paths.join(', ')}`);
    }
    const header = Buffer.alloc(5);
    header.writeInt32BE(id, 1);
    return Buffer.concat([header, type.toBuffer(value)]);
  }

  async request<T>(method: string, path: string): Promise<{ status: number; body: T }> {
    const byId = /^\/schemas\/ids\/(\d+)$/.exec(path);
    if (method === 'GET' && byId) {
      const text = this.texts.get(Number(byId[1]));
      return text ? { status: 200, body: { schema: text } as T } : { status: 404, body: { message: 'Schema not found' } as T };
    }
    const latest = /^\/subjects\/([^/]+)\/versions\/latest$/.exec(path);
    if (method === 'GET' && latest) {
      const id = this.latest.get(decodeURIComponent(latest[1]!));
      return id !== undefined ? { status: 200, body: { id, schema: this.texts.get(id) } as T } : { status: 404, body: { message: 'Subject not found' } as T };
    }
    return { status: 404, body: { message: `sluice test answers no ${method} ${path}` } as T };
  }
}
