import { describe, expect, it } from 'vitest';
import { requireServer } from '../support/servers.js';

describe('integration test guard', () => {
  it('fails naming the server and the fix when it is down (never skips)', async () => {
    await expect(requireServer('Kafka broker', '127.0.0.1:1')).rejects.toThrow(/Kafka broker is not reachable at 127\.0\.0\.1:1: .*npm run stack:up/);
  });
});
