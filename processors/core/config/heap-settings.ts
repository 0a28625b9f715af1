import { z } from 'zod';
import { MAX_HEAP_MB, parseHeapMb, type HeapLimits } from '../runtime/v8-heap.js';
import { setting } from './settings.js';

/**
 * A heap limit in MiB, parsed by the same function bin/sluice.mjs uses before anything loads
 * (core/runtime/v8-heap.ts): a value it does not take is an error here, never a silent default.
 */
const heapMb = z.union([z.string(), z.number()]).transform((raw, ctx) => {
  const mb = parseHeapMb(String(raw));
  if (mb === undefined) {
    ctx.addIssue({ code: 'custom', message: `a whole number of MiB from 0 (V8's default) to ${MAX_HEAP_MB}` });
    return z.NEVER;
  }
  return mb;
});

/**
 * The V8 heap limit settings of a processor that runs with limits of its own (`sluice live`,
 * `sluice files`: core/runtime/v8-heap.ts OWN_HEAP_LIMITS), as `<command>.maxOldSpaceMb` and
 * `<command>.maxSemiSpaceMb` (SLUICE_<COMMAND>_MAX_OLD_SPACE_MB / _MAX_SEMI_SPACE_MB).
 * `why` says why the processor's defaults are what they are.
 */
export function heapSettings(command: string, defaults: HeapLimits, why: { oldSpace?: string; semiSpace?: string } = {}) {
  const applied = `\`sluice ${command}\` runs in a worker thread of its process created with its limits (decided by bin/sluice.mjs before anything loads: so from the environment only, not a config file), unless NODE_OPTIONS or the command line give a V8 heap flag (then the operator's flags alone apply, no worker)`;
  return {
    maxOldSpaceMb: setting(heapMb, {
      doc: `V8 old-generation limit of the ${command} process, MiB (as node --max-old-space-size; 0 = V8's default, ~4 GiB): ${applied}.${why.oldSpace ? ` ${why.oldSpace}` : ''}`,
      default: String(defaults.maxOldSpaceMb),
      example: '160',
    }),
    maxSemiSpaceMb: setting(heapMb, {
      doc: `V8 young-generation semi-space limit of the ${command} process, MiB (as node --max-semi-space-size; the young generation is three of them; 0 = V8's default, 16); from the environment only, as the old-generation limit.${why.semiSpace ? ` ${why.semiSpace}` : ''}`,
      default: String(defaults.maxSemiSpaceMb),
      example: '4',
    }),
  };
}
