import { defineComponent } from '../component.js';
import { int, object, string, type Infer } from '../fields.js';
import { coreDefault } from './core-defaults.js';

const config = object(
  {
    port: int({
      doc: 'Port of `/healthz`, `/readyz` and `/metrics` (Prometheus: records in/out/dlq, batch size and latency, upload bytes, lag per partition); 0 picks a free one.',
      default: 9466,
      env: ['SLUICE_EXPORT_HTTP_PORT'],
      min: 0,
      max: 65535,
    }),
    host: string({
      doc: 'Address the health and metrics server listens on: `127.0.0.1` (this machine only) by default, `0.0.0.0` (every interface) in a container whose port is published.',
      pattern: /^[0-9A-Za-z.:-]+$/,
      patternFix: 'write an address such as 127.0.0.1, 0.0.0.0, ::1 or a host name',
      ...coreDefault('http', 'host'),
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
