// The client's address, as the rate limits and the access log see it.
//
// A connection from a trusted proxy (CHIRP_GATEWAY_TRUSTED_PROXIES: addresses
// and CIDR ranges) speaks for someone else, and X-Forwarded-For says whom:
// each proxy appends the address it was reached from, so the list reads
// client, proxy1, proxy2, ... and only its right end was written by proxies
// we trust. The client is the right-most address that is not a trusted proxy
// (nginx's real_ip_recursive). Anything left of it may be the client's own
// invention and is never believed. A connection from anywhere else is its own
// client, whatever it sends: otherwise anyone could take a fresh rate-limit
// bucket per request by making up a header.
import { BlockList, isIP } from "node:net";
import { unmapIpv4 } from "./rate-limit.js";

export interface TrustedProxies {
  /** Whether `ip` (a plain address, IPv4-in-IPv6 allowed) is a trusted proxy. */
  has(ip: string): boolean;
  /** False when none are configured: X-Forwarded-For is then never read. */
  readonly any: boolean;
}

/**
 * Parses a comma-separated list of addresses and CIDR ranges ("10.0.0.0/8,
 * 192.168.1.7, fd00::/8, ::1"). Throws on the first entry that is neither,
 * naming it.
 */
export function parseTrustedProxies(value: string): TrustedProxies {
  const list = new BlockList();
  let count = 0;
  for (const raw of value.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const [addr = "", bits, extra] = entry.split("/");
    const family = isIP(addr);
    if (family === 0 || extra !== undefined) throw new Error(`not an address or CIDR range: ${JSON.stringify(entry)}`);
    const type = family === 4 ? "ipv4" : "ipv6";
    if (bits === undefined) list.addAddress(addr, type);
    else {
      const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
      if (!(prefix >= 0 && prefix <= (family === 4 ? 32 : 128))) throw new Error(`bad prefix length in ${JSON.stringify(entry)}`);
      list.addSubnet(addr, prefix, type);
    }
    count++;
  }
  return {
    any: count > 0,
    has(ip) {
      const addr = unmapIpv4(ip);
      const family = isIP(addr);
      return family !== 0 && list.check(addr, family === 4 ? "ipv4" : "ipv6");
    },
  };
}

/**
 * One X-Forwarded-For entry as a plain address: "1.2.3.4", "1.2.3.4:5678",
 * "2001:db8::1", "[2001:db8::1]:443" and IPv4-in-IPv6 are all understood;
 * undefined for anything else ("unknown", obfuscated identifiers, garbage).
 */
export function parseForwardedEntry(entry: string): string | undefined {
  let s = entry.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(s);
  if (bracketed !== null) s = bracketed[1]!;
  else if (/^[\d.]+:\d{1,5}$/.test(s)) s = s.slice(0, s.lastIndexOf(":"));
  // A zone id ("fe80::1%eth0") means nothing beyond the proxy's host.
  if (s.includes("%")) return undefined;
  return isIP(s) === 0 ? undefined : unmapIpv4(s).toLowerCase();
}

/**
 * The client of a request that arrived from `peer` (the socket's address)
 * with `forwardedFor` (every X-Forwarded-For header's value, in order).
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | readonly string[] | undefined, trusted: TrustedProxies): string {
  if (peer === undefined) return "unknown";
  const socket = unmapIpv4(peer);
  if (!trusted.any || forwardedFor === undefined || !trusted.has(socket)) return socket;
  const entries = (typeof forwardedFor === "string" ? [forwardedFor] : forwardedFor).join(",").split(",");
  // Walk from the nearest hop outwards while the hops are ours.
  let client = socket;
  for (let i = entries.length - 1; i >= 0; i--) {
    if (entries[i]!.trim() === "") continue;
    const addr = parseForwardedEntry(entries[i]!);
    // An entry no proxy of ours would write: the last trusted hop is the best we know.
    if (addr === undefined) return client;
    client = addr;
    if (!trusted.has(addr)) return addr;
  }
  // Every hop is a trusted proxy (an internal client): the left-most.
  return client;
}
