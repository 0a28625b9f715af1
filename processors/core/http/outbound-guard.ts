import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';

/**
 * Where the process may send a request whose URL someone else chose (a report's webhook):
 * only to hosts on an allow list, and only to public addresses unless a network is
 * explicitly allowed. Against server-side request forgery: a URL naming the Kafka Connect
 * REST port, the cloud metadata service (169.254.169.254) or anything else on the inside.
 *
 * Every address the name resolves to is checked (IPv4 and IPv6, IPv4-mapped IPv6 as the
 * IPv4 it carries), and the caller connects to the address that was checked (`address`),
 * never resolving the name again: a DNS answer that changes between the check and the
 * connection (DNS rebinding) cannot move the request inside.
 */

export interface OutboundPolicy {
  /** Host names allowed (lower case); `*.example.com` allows every subdomain of example.com. Empty: none. */
  allowedHosts: readonly string[];
  /** Networks (CIDR) allowed even though they are private, loopback or link-local, e.g. 10.20.0.0/16. */
  allowedNetworks: readonly string[];
}

export type OutboundCheck = { ok: true; url: URL; address: string; family: 4 | 6 } | { ok: false; reason: string };

/** The short, fixed reasons of a refusal (statuses and logs show these, never an answer's body). */
export const REFUSALS = {
  notHttp: 'refused: not an http(s) URL',
  hostNotAllowed: 'refused: the host is not on the allow list',
  credentials: 'refused: credentials in the URL',
  unresolved: 'refused: the host name does not resolve',
  privateAddress: 'refused: the host resolves to a private, loopback, link-local or reserved address',
} as const;

type Address = ipaddr.IPv4 | ipaddr.IPv6;

export class OutboundGuard {
  private readonly hosts: readonly string[];
  private readonly networks: [Address, number][];

  constructor(policy: OutboundPolicy, private readonly resolve: (host: string) => Promise<{ address: string; family: number }[]> = (host) => lookup(host, { all: true, verbatim: true })) {
    this.hosts = policy.allowedHosts.map((h) => canonicalHost(h.trim().replace(/^\[(.*)\]$/, '$1'))).filter(Boolean);
    this.networks = policy.allowedNetworks.map((n) => parseNetwork(n));
  }

  /** Whether the URL's host is on the allow list (no DNS: a quick check for the REST shim's 400). */
  hostAllowed(url: string): boolean {
    let host: string;
    try {
      host = hostOf(new URL(url));
    } catch {
      return false;
    }
    return this.hosts.some((allowed) => (allowed.startsWith('*.') ? host.endsWith(allowed.slice(1)) && host.length > allowed.length - 1 : host === allowed));
  }

  /** Checks the URL and resolves its host: the address to connect to, or why not. */
  async check(text: string): Promise<OutboundCheck> {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return { ok: false, reason: REFUSALS.notHttp };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: REFUSALS.notHttp };
    if (url.username || url.password) return { ok: false, reason: REFUSALS.credentials };
    if (!this.hostAllowed(text)) return { ok: false, reason: REFUSALS.hostNotAllowed };
    let resolved: { address: string; family: number }[];
    try {
      const host = hostOf(url);
      resolved = ipaddr.isValid(host) ? [{ address: host, family: host.includes(':') ? 6 : 4 }] : await this.resolve(host);
    } catch {
      return { ok: false, reason: REFUSALS.unresolved };
    }
    if (resolved.length === 0) return { ok: false, reason: REFUSALS.unresolved };
    // Every address must pass, not just the first: the connection could go to any of them.
    for (const r of resolved) if (!this.addressAllowed(r.address)) return { ok: false, reason: REFUSALS.privateAddress };
    const first = ipaddr.process(resolved[0]!.address);
    return { ok: true, url, address: first.toString(), family: first.kind() === 'ipv4' ? 4 : 6 };
  }

  /** Public unicast, or inside an explicitly allowed network. IPv4-mapped IPv6 counts as its IPv4. */
  addressAllowed(text: string): boolean {
    let address: Address;
    try {
      address = ipaddr.process(text.replace(/%.*$/, ''));
    } catch {
      return false;
    }
    if (this.networks.some(([net, bits]) => net.kind() === address.kind() && address.match(net, bits))) return true;
    return address.range() === 'unicast';
  }
}

function hostOf(url: URL): string {
  // An IPv6 literal comes bracketed ([::1]).
  return canonicalHost(url.hostname.replace(/^\[(.*)\]$/, '$1'));
}

/** Lower case without a trailing dot; an address in one spelling (::ffff:127.0.0.1 = ::ffff:7f00:1). */
function canonicalHost(host: string): string {
  const h = host.replace(/\.$/, '').toLowerCase();
  return ipaddr.isValid(h) ? ipaddr.parse(h).toString() : h;
}

function parseNetwork(text: string): [Address, number] {
  const t = text.trim();
  const [address, bits] = t.includes('/') ? ipaddr.parseCIDR(t) : [ipaddr.parse(t), t.includes(':') ? 128 : 32];
  // A network written as IPv4-mapped IPv6 is the IPv4 network it carries.
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) return [(address as ipaddr.IPv6).toIPv4Address(), bits - 96];
  return [address, bits];
}

/** Validates a comma-separated list of networks (CIDR or single addresses) for a setting. */
export function isNetworkList(text: string): boolean {
  try {
    for (const n of text.split(',').filter((s) => s.trim())) parseNetwork(n);
    return true;
  } catch {
    return false;
  }
}
