import { PermanentError } from '../errors/errors.js';
import type { LakeSchema } from '../parquet/lake-schema.js';
import { loadPipeline } from './lint.js';
import type { PipelineConfig } from './pipeline.js';

/**
 * The lake's columns, read from the pipeline that writes the lake (its output.s3.columns): the
 * one source of truth for `sluice compact`, the benchmarks and the tests that write lake files
 * of their own (connectors/exports/lake.yaml).
 */
export function lakeSchemaOf(pipeline: PipelineConfig, file = pipeline.name): LakeSchema {
  const output = pipeline.output.config;
  if (output.format !== 'parquet' || !output.columns) {
    throw new PermanentError(`${file} must write parquet with output.s3.columns declared (the lake's columns)`);
  }
  return { columns: output.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable })) };
}

/** The lake's columns of a pipeline file (loaded and checked by the pipeline loader). */
export function lakeSchemaOfFile(file: string, env: NodeJS.ProcessEnv = process.env): LakeSchema {
  return lakeSchemaOf(loadPipeline(file, env), file);
}
