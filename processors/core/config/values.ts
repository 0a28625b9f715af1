import { z } from 'zod';
import { isNetworkList } from '../http/outbound-guard.js';

/**
 * Value schemas that several processors' settings share (topics, comma-separated lists,
 * webhook allow lists), defined once so every processor accepts and explains them alike.
 */

export const topicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'a Kafka topic name: letters, digits, . _ - (at most 249)');

/** `a, b,,c` -> ['a', 'b', 'c']. */
export const commaList = (s: string): string[] =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/** Webhook hosts a processor may call: names, `*.` wildcards or addresses, comma-separated. */
export const hostList = z
  .string()
  .transform(commaList)
  .pipe(z.array(z.string().regex(/^(\*\.)?[A-Za-z0-9.:\[\]-]+$/, 'a host name (hooks.slack.com), a wildcard (*.example.com) or an address')));

/** Networks (CIDR) a webhook may resolve to, comma-separated. */
export const networkList = z
  .string()
  .refine(isNetworkList, 'networks in CIDR notation (10.20.0.0/16, 127.0.0.1/32, fd00::/8), comma-separated')
  .transform(commaList);
