import { Registry, collectDefaultMetrics, Counter, Gauge, Histogram } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

/** A Prometheus registry per processor, with Node's default metrics and a `processor` label. */
export function createMetricsRegistry(processor: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ processor });
  collectDefaultMetrics({ register: registry, prefix: 'sluice_' });
  return registry;
}
