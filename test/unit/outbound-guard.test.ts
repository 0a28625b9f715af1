import { describe, expect, it } from 'vitest';
import { OutboundGuard, REFUSALS } from '../../processors/core/http/outbound-guard.js';

/** A resolver of our own: host name -> the addresses a (possibly hostile) DNS server answers. */
const dns = (table: Record<string, string[]>) => async (host: string) => {
  const addresses = table[host];
  if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

describe('outbound guard (webhook targets against SSRF)', () => {
  const table = {
    'hooks.example.com': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
    'inside.example.com': ['10.1.2.3'],
    'mixed.example.com': ['93.184.216.34', '127.0.0.1'],
    'metadata.example.com': ['169.254.169.254'],
    'mapped.example.com': ['::ffff:127.0.0.1'],
    'ula.example.com': ['fd12:3456::1'],
  };
  const everyHost = Object.keys(table);

  it('nothing is allowed by default: an empty allow list refuses every host', async () => {
    const guard = new OutboundGuard({ allowedHosts: [], allowedNetworks: [] }, dns(table));
    expect(await guard.check('https://hooks.example.com/services/T/B/x')).toEqual({ ok: false, reason: REFUSALS.hostNotAllowed });
    expect(guard.hostAllowed('https://hooks.example.com/x')).toBe(false);
  });

  it('allows a listed host on a public address, and gives the checked address to connect to', async () => {
    const guard = new OutboundGuard({ allowedHosts: ['hooks.example.com'], allowedNetworks: [] }, dns(table));
    expect(await guard.check('https://hooks.example.com/services/T/B/x')).toMatchObject({ ok: true, address: '93.184.216.34', family: 4 });
    expect(await guard.check('https://other.example.com/x')).toEqual({ ok: false, reason: REFUSALS.hostNotAllowed });
    expect(await guard.check('https://HOOKS.example.com./x')).toMatchObject({ ok: true });
  });

  it('a wildcard allows subdomains only', () => {
    const guard = new OutboundGuard({ allowedHosts: ['*.example.com'], allowedNetworks: [] }, dns(table));
    expect(guard.hostAllowed('https://hooks.example.com/x')).toBe(true);
    expect(guard.hostAllowed('https://a.b.example.com/x')).toBe(true);
    expect(guard.hostAllowed('https://example.com/x')).toBe(false);
    expect(guard.hostAllowed('https://evilexample.com/x')).toBe(false);
    expect(guard.hostAllowed('https://example.com.evil.net/x')).toBe(false);
  });

  it('refuses private, loopback, link-local, mapped and reserved addresses, by name or literal, IPv4 and IPv6', async () => {
    const literals = ['127.0.0.1', '10.0.0.5', '172.16.3.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '[::1]', '[fe80::1]', '[fd00::2]', '[::ffff:127.0.0.1]', '[::ffff:a00:1]', '[::]', '224.0.0.1'];
    const guard = new OutboundGuard({ allowedHosts: [...everyHost, ...literals.map((l) => l.replace(/^\[(.*)\]$/, '$1'))], allowedNetworks: [] }, dns(table));
    for (const host of literals) expect(await guard.check(`http://${host}:8083/connectors`), host).toEqual({ ok: false, reason: REFUSALS.privateAddress });
    for (const host of ['inside.example.com', 'metadata.example.com', 'mapped.example.com', 'ula.example.com']) {
      expect(await guard.check(`https://${host}/x`), host).toEqual({ ok: false, reason: REFUSALS.privateAddress });
    }
    // Every resolved address must pass, not only the first.
    expect(await guard.check('https://mixed.example.com/x')).toEqual({ ok: false, reason: REFUSALS.privateAddress });
    expect(await guard.check('https://nowhere.example.com/x')).toEqual({ ok: false, reason: REFUSALS.hostNotAllowed });
  });

  it('an explicitly allowed network lets an internal receiver in, and nothing else', async () => {
    const guard = new OutboundGuard({ allowedHosts: ['inside.example.com', 'mapped.example.com', 'metadata.example.com', '127.0.0.1'], allowedNetworks: ['10.1.0.0/16', '127.0.0.1/32'] }, dns(table));
    expect(await guard.check('https://inside.example.com/x')).toMatchObject({ ok: true, address: '10.1.2.3' });
    expect(await guard.check('http://127.0.0.1:9000/x')).toMatchObject({ ok: true, address: '127.0.0.1' });
    // IPv4-mapped IPv6 is judged (and connected to) as its IPv4.
    expect(await guard.check('https://mapped.example.com/x')).toMatchObject({ ok: true, address: '127.0.0.1', family: 4 });
    expect(await guard.check('https://metadata.example.com/x')).toEqual({ ok: false, reason: REFUSALS.privateAddress });
  });

  it('refuses other schemes, credentials in the URL and names that do not resolve', async () => {
    const guard = new OutboundGuard({ allowedHosts: ['hooks.example.com', 'gone.example.com'], allowedNetworks: [] }, dns(table));
    expect(await guard.check('ftp://hooks.example.com/x')).toEqual({ ok: false, reason: REFUSALS.notHttp });
    expect(await guard.check('file:///etc/passwd')).toEqual({ ok: false, reason: REFUSALS.notHttp });
    expect(await guard.check('https://user:pw@hooks.example.com/x')).toEqual({ ok: false, reason: REFUSALS.credentials });
    expect(await guard.check('https://gone.example.com/x')).toEqual({ ok: false, reason: REFUSALS.unresolved });
  });
});
