/**
 * Every dead-letter reason code Sluice writes (the `sluice.dlq.reason` header), in one
 * place: the normalizer's (docs/domain.md's rules), the export pipelines' (decode, each
 * processor, the output's placement and the target's refusals) and the report processor's.
 * Codes are stable: alert rules, `sluice dlq inspect --reason` and redrive filters match
 * them. A new failure gets a new code here, never a free-form string at the call site.
 */
export const DLQ_REASONS = {
  // docs/domain.md: an invalid staging.agent_events row (the normalizer).
  unknownEventType: 'unknown_event_type',
  /** `missing_field:<column>`: see missingField(). */
  missingFieldPrefix: 'missing_field',
  invalidAmount: 'invalid_amount',
  currencyMismatch: 'currency_mismatch',
  invalidTimestamp: 'invalid_timestamp',
  immutableEventMutated: 'immutable_event_mutated',
  /** Not a Debezium change event (not JSON, no op, a row that is not an object). */
  unparseableRecord: 'unparseable_record',
  /** A row the rules accept but the contract's current version does not (a safety net). */
  schemaViolation: 'schema_violation',

  // Export pipelines: the input's decoding.
  /** Not in the Confluent wire format (magic byte 0 + schema id), or a tombstone. */
  notAvro: 'not_avro',
  /** A schema id the registry does not know. */
  unknownSchema: 'unknown_schema',
  /** Bytes that do not decode with their schema, or a value that is not JSON. */
  decodeError: 'decode_error',
  // Export pipelines: the processors.
  mappingError: 'mapping_error',
  filterError: 'filter_error',
  dedupeError: 'dedupe_error',
  selectError: 'select_error',
  dropError: 'drop_error',
  // Export pipelines: the output.
  /** A value its column's type cannot hold (a string in an int64, a null in a required column). */
  schemaMismatch: 'schema_mismatch',
  /** A path template field that cannot be rendered (an object, a missing time). */
  pathError: 'path_error',
  /** A row the SQL target refused (a constraint, a value out of range): the database's message travels with it. */
  sqlRejected: 'sql_rejected',
  /** kafka output: the record's topic cannot be rendered, is not a valid name, or does not exist. */
  topicError: 'topic_error',
  /** kafka output: the key or a header expression failed on the record. */
  keyError: 'key_error',
  /** kafka output: the encoded value is larger than max_message_bytes. */
  messageTooLarge: 'message_too_large',
  /** switch output: the record matched no case (and `unmatched` is dlq). */
  noRoute: 'no_route',
  /** switch output: a case's check failed or yielded no boolean. */
  routeError: 'route_error',

  // The report processor.
  malformedJson: 'malformed_json',
  invalidRequest: 'invalid_request',
} as const;

export type DlqReason = (typeof DLQ_REASONS)[Exclude<keyof typeof DLQ_REASONS, 'missingFieldPrefix'>] | `missing_field:${string}`;

/** `missing_field:<column>`: a required column is null or absent. */
export function missingField(column: string): DlqReason {
  return `${DLQ_REASONS.missingFieldPrefix}:${column}`;
}
