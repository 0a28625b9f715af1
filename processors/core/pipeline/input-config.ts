import type { KafkaInputConfig } from '../../export/inputs/kafka.js';
import type { PipelineConfig } from './pipeline.js';

/**
 * What commands and the record path ask of a pipeline's input whatever it is (kafka, stdin,
 * generate...). Types only from the pipeline modules: the outputs and the runner import this
 * without pulling the component catalogue in (which imports them).
 */

/** How an input's values are decoded by the record path's first step. */
export type ValueDecoding = KafkaInputConfig['decode'];

/** The decoding of a pipeline's input values (the kafka input's `decode`; JSON for inputs of JSON lines). */
export function valueDecoding(p: Pick<PipelineConfig, 'input'>): ValueDecoding {
  const config = p.input.config as { decode?: ValueDecoding };
  return config.decode ?? 'json';
}

/** The kafka input's config of a pipeline a command needs a consumer group of (replay, compact): throws naming the file otherwise. */
export function requireKafkaInput(p: Pick<PipelineConfig, 'input' | 'file'>, what: string): KafkaInputConfig {
  if (p.input.type !== 'kafka') throw new Error(`${what} needs a pipeline with a kafka input (a consumer group), and ${p.file} reads ${p.input.type}`);
  return p.input.config;
}

/** The kafka input's config, or undefined when the pipeline reads something else (stdin, generate...). */
export function kafkaInputOf(p: Pick<PipelineConfig, 'input'>): KafkaInputConfig | undefined {
  return p.input.type === 'kafka' ? p.input.config : undefined;
}
