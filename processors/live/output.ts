import avro from 'avsc';
import type { Message } from 'kafkajs';
import { exactLongHook } from '../core/registry/codec.js';
import type { LiveRow } from './aggregate.js';

/**
 * The records of the compacted output topic `agent-commissions.live`: key
 * `<agent_id>|<YYYY-MM>` (the month is the last 7 characters, so any agent id fits), value
 * the agent-commission-live contract (schemas/agent-commission-live) in the Confluent wire
 * format with the schema id the registry gave it.
 */

export interface LiveTotals {
  agent_id: string;
  month: string;
  events: number;
  customers_onboarded: number;
  deposits_minor: string;
  withdrawals_minor: string;
  investments_minor: string;
  net_inflow_minor: string;
  commission_minor: string;
  tier_reached: boolean;
  currency: string;
  rules_version: string;
  /** ms since the epoch. */
  updated_at: number;
}

export const outputKey = (agentId: string, month: string): string => `${agentId}|${month}`;

/** The agent and month of an output key; undefined for a key that is not one. */
export function parseOutputKey(key: string): { agentId: string; month: string } | undefined {
  if (key.length < 9 || key[key.length - 8] !== '|') return undefined;
  return { agentId: key.slice(0, -8), month: key.slice(-7) };
}

export function toTotals(row: LiveRow, currency: string, rulesVersion: string, nowMs: number): LiveTotals {
  return {
    agent_id: row.agentId,
    month: row.month,
    events: row.events,
    customers_onboarded: row.customersOnboarded,
    deposits_minor: row.depositsMinor.toString(),
    withdrawals_minor: row.withdrawalsMinor.toString(),
    investments_minor: row.investmentsMinor.toString(),
    net_inflow_minor: row.netInflowMinor.toString(),
    commission_minor: row.commissionMinor.toString(),
    tier_reached: row.tierReached,
    currency,
    rules_version: rulesVersion,
    updated_at: nowMs,
  };
}

/** Encodes and decodes output values with one registered schema (encode is synchronous: no registry call per record). */
export class TotalsCodec {
  private readonly type: avro.Type;

  constructor(
    readonly schemaId: number,
    schemaText: string,
  ) {
    this.type = avro.Type.forSchema(JSON.parse(schemaText) as avro.Schema, { typeHook: exactLongHook as never });
  }

  encode(t: LiveTotals): Buffer {
    const head = Buffer.alloc(5);
    head.writeInt32BE(this.schemaId, 1);
    return Buffer.concat([head, this.type.toBuffer(t)]);
  }

  message(t: LiveTotals): Message {
    return { key: outputKey(t.agent_id, t.month), value: this.encode(t) };
  }
}
