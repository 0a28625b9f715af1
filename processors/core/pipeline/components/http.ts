import { defineComponent } from '../component.js';
import { int, object, type Infer } from '../fields.js';

const config = object(
  {
    port: int({
      doc: 'Port of `/healthz`, `/readyz` and `/metrics` (Prometheus: records in/out/dlq, batch size and latency, upload bytes, lag per partition); 0 picks a free one.',
      default: 9466,
      env: ['SLUICE_EXPORT_HTTP_PORT'],
      min: 0,
      max: 65535,
    }),
  },
  { doc: 'Health and metrics server.' },
);

export type HttpConfig = Infer<typeof config>;

export const httpSection = defineComponent({
  name: 'http',
  kind: 'section',
  summary: 'The health and metrics endpoint of the process running the pipeline.',
  config,
  example: 'port: 9466',
});
