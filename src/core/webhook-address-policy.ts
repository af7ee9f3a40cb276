// Where a webhook may post (issue 15, "Secrets and reach"): a rule must not be able to make the
// service reach inside — itself (`/admin/savepoints` with a token header), the machine's other
// services on loopback, the cloud metadata address, or the private network — unless the
// operator allows it (`VIGIL_WEBHOOK_ALLOW`).
//
// Refused unless allowed: loopback (127.0.0.0/8, ::1), unspecified (0.0.0.0/8, ::), link-local
// (169.254.0.0/16, fe80::/10), private (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7),
// IPv4 inside IPv6 (::ffff:a.b.c.d) judged as the IPv4 address, names that always mean this
// machine (`localhost`, `*.localhost`), and the service's own endpoint (its listen port on any
// local address) even when the address itself is allowed — only the entry `self` allows that.
//
// Allow entries: an IP address, a CIDR block (`10.0.0.0/8`, `fd00::/8`), a host name (the URL's
// host, as written; its addresses are then not checked) or `self`.
//
// The compiler checks literal targets (an IP or a `localhost` name in the URL); the webhook
// sink checks the address it really connects to, after DNS resolution, inside the socket's own
// `lookup`, so a name cannot resolve to one address when checked and another when connected.

import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/** The service's own HTTP endpoint (its listen port); null before it listens. */
export type SelfEndpoint = () => { port: number } | null;

const REFUSED: readonly [string, number, 'ipv4' | 'ipv6', string][] = [
  ['0.0.0.0', 8, 'ipv4', 'an unspecified address'],
  ['127.0.0.0', 8, 'ipv4', 'a loopback address'],
  ['10.0.0.0', 8, 'ipv4', 'a private address'],
  ['172.16.0.0', 12, 'ipv4', 'a private address'],
  ['192.168.0.0', 16, 'ipv4', 'a private address'],
  ['169.254.0.0', 16, 'ipv4', 'a link-local address'],
  ['::', 128, 'ipv6', 'an unspecified address'],
  ['::1', 128, 'ipv6', 'a loopback address'],
  ['fe80::', 10, 'ipv6', 'a link-local address'],
  ['fc00::', 7, 'ipv6', 'a private address'],
];

const REFUSED_LISTS = REFUSED.map(([net, prefix, family, what]) => {
  const list = new BlockList();
  list.addSubnet(net, prefix, family);
  return { list, what };
});

/** One refusal, with the reason shown to the operator (never a path or a query). */
export class AddressRefused extends Error {
  override name = 'AddressRefused';
  readonly code = 'ERR_VIGIL_ADDRESS_REFUSED';
}

/** An allow entry is malformed: the message says why (for the configuration error). */
export function checkAllowEntry(entry: string): string | null {
  const e = entry.trim();
  if (e === '') return 'an empty entry';
  if (e.toLowerCase() === 'self') return null;
  const slash = e.indexOf('/');
  if (slash >= 0) {
    const ip = e.slice(0, slash);
    const bits = e.slice(slash + 1);
    const family = isIP(ip);
    if (family === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) return `'${e}' is not a CIDR block (e.g. 10.0.0.0/8)`;
    return null;
  }
  if (isIP(unbracket(e)) !== 0) return null;
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(e)) return `'${e}' is not an IP address, a CIDR block, a host name or 'self'`;
  return null;
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function familyName(ip: string): 'ipv4' | 'ipv6' {
  return isIP(ip) === 6 ? 'ipv6' : 'ipv4';
}

export class WebhookAddressPolicy {
  readonly #allowed = new BlockList();
  readonly #allowedNames = new Set<string>();
  readonly #allowSelf: boolean;
  readonly #self: SelfEndpoint;
  /** The allow list as configured (for messages). */
  readonly entries: readonly string[];

  /** `allow`: entries as in VIGIL_WEBHOOK_ALLOW (malformed entries are ignored: config checks them). */
  constructor(allow: readonly string[] = [], self: SelfEndpoint = () => null) {
    this.entries = allow.map((a) => a.trim()).filter((a) => a !== '');
    this.#self = self;
    let allowSelf = false;
    for (const entry of this.entries) {
      if (checkAllowEntry(entry) !== null) continue;
      if (entry.toLowerCase() === 'self') {
        allowSelf = true;
      } else if (entry.includes('/')) {
        const [ip, bits] = entry.split('/') as [string, string];
        this.#allowed.addSubnet(ip, Number(bits), familyName(ip));
      } else if (isIP(unbracket(entry)) !== 0) {
        const ip = unbracket(entry);
        this.#allowed.addAddress(ip, familyName(ip));
      } else {
        this.#allowedNames.add(entry.toLowerCase().replace(/\.$/, ''));
      }
    }
    this.#allowSelf = allowSelf;
  }

  /** The service's own endpoint as last known (null before it listens). */
  selfEndpoint(): { port: number } | null {
    return this.#self();
  }

  /** True when `hostname` (a URL's host) is allowed by name: its addresses are not checked. */
  allowsName(hostname: string): boolean {
    return this.#allowedNames.has(unbracket(hostname).toLowerCase().replace(/\.$/, ''));
  }

  /**
   * Why a URL host is refused before any lookup (an IP literal in a refused range, a
   * `localhost` name), or null. Names that need DNS are judged later, by `checkAddress`.
   */
  checkHost(hostname: string, port: number | null = null): string | null {
    if (this.allowsName(hostname)) return null;
    const host = unbracket(hostname).toLowerCase().replace(/\.$/, '');
    if (isIP(host) !== 0) return this.checkAddress(host, port);
    if (host === 'localhost' || host.endsWith('.localhost')) {
      // Allowed only when loopback itself is allowed (then the address check decides).
      return this.checkAddress('127.0.0.1', port) === null ? null : `${host} is a loopback address`;
    }
    return null;
  }

  /** Why the service must not connect to `ip` (at `port`), or null when it may. */
  checkAddress(ip: string, port: number | null = null): string | null {
    const family = familyName(ip);
    const self = this.#self();
    if (!this.#allowSelf && self !== null && port === self.port && isLocalAddress(ip)) {
      return `${ip}:${port} is this service's own endpoint`;
    }
    if (this.#allowed.check(ip, family)) return null;
    for (const { list, what } of REFUSED_LISTS) {
      if (list.check(ip, family)) return `${ip} is ${what}`;
    }
    return null;
  }
}

/** An address of this machine: loopback, unspecified, or one of its interfaces. */
function isLocalAddress(ip: string): boolean {
  const family = familyName(ip);
  const probe = new BlockList();
  probe.addSubnet('127.0.0.0', 8, 'ipv4');
  probe.addSubnet('0.0.0.0', 8, 'ipv4');
  probe.addAddress('::1', 'ipv6');
  probe.addAddress('::', 'ipv6');
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) probe.addAddress(a.address.replace(/%.*$/, ''), a.family === 'IPv6' ? 'ipv6' : 'ipv4');
  }
  return probe.check(ip, family);
}

/** The text that says how to allow a refused target. */
export const ALLOW_HINT = 'refused unless VIGIL_WEBHOOK_ALLOW lists it';
