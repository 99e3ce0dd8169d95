// Which push endpoints the service will send to. A push subscription's
// endpoint is a URL the caller chose, and the service POSTs to it: without a
// check, RegisterPush would let anyone make the service call into its own
// network (server-side request forgery). So an endpoint must be https and its
// host must resolve only to public addresses, checked when it is registered,
// and again at every send by the connection's own DNS lookup (guardedLookup),
// so a name that resolved to a public address at registration and to
// 127.0.0.1 later (DNS rebinding) is refused at connect time, on the address
// actually dialled. CHIRP_PUSH_ALLOW_PRIVATE_ENDPOINTS=1 turns the address
// check off (local development, tests); https stays required.
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOptions } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";

/** An endpoint refused: its message is safe to show (no addresses). */
export class PushEndpointError extends Error {
  override readonly name = "PushEndpointError";
}

// Every range that is not a public unicast address (RFC 6890 special-purpose
// registries, plus multicast and the reserved class E).
const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local (cloud metadata services live here)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24], // 6to4 relay anycast
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  BLOCKED.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["100::", 64], // discard
  ["2001::", 23], // IETF protocol assignments (Teredo, ORCHID, ...)
  ["2001:db8::", 32], // documentation
  ["2002::", 16], // 6to4: carries an IPv4 address of any kind
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
] as const) {
  BLOCKED.addSubnet(net, prefix, "ipv6");
}
const GLOBAL_UNICAST_V6 = new BlockList();
GLOBAL_UNICAST_V6.addSubnet("2000::", 3, "ipv6");

/** The IPv4 address an IPv6 address carries, for the forms that are forwarded to it (::ffff:a.b.c.d, ::a.b.c.d, NAT64 64:ff9b::/96). */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted !== null) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex === null) return undefined;
  const hi = parseInt(hex[1]!, 16);
  const lo = parseInt(hex[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Whether `address` (an IP literal) is a public unicast address a push service may have. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !BLOCKED.check(address, "ipv4");
  if (family !== 6) return false;
  const v4 = embeddedIpv4(address);
  if (v4 !== undefined) return isPublicAddress(v4);
  return GLOBAL_UNICAST_V6.check(address, "ipv6") && !BLOCKED.check(address, "ipv6");
}

/** A URL's host as an IP literal when it is one (IPv6 without brackets), else undefined. */
function literalHost(url: URL): string | undefined {
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return isIP(host) === 0 ? undefined : host;
}

/**
 * Parses an endpoint into the URL that is stored and sent to (WHATWG
 * normalised, so one subscription has one spelling): https, a host, no
 * credentials. Throws PushEndpointError.
 */
export function parseEndpoint(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PushEndpointError("endpoint is not a URL");
  }
  if (url.protocol !== "https:") throw new PushEndpointError("endpoint must be https");
  if (url.hostname === "") throw new PushEndpointError("endpoint has no host");
  if (url.username !== "" || url.password !== "") throw new PushEndpointError("endpoint must not carry credentials");
  return url;
}

export type Resolve = (host: string) => Promise<readonly LookupAddress[]>;

const systemResolve: Resolve = (host) =>
  new Promise((resolve, reject) => dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => (err === null ? resolve(addresses) : reject(err))));

/**
 * Refuses an endpoint whose host is, or resolves to, any address that is not
 * public (every address counts: a name with one private address among public
 * ones is refused). With `allowPrivate` only the URL's form is checked.
 */
export async function checkEndpoint(url: URL, opts: { allowPrivate: boolean; resolve?: Resolve }): Promise<void> {
  if (opts.allowPrivate) return;
  const literal = literalHost(url);
  if (literal !== undefined) {
    if (!isPublicAddress(literal)) throw new PushEndpointError("endpoint address is not public");
    return;
  }
  let addresses: readonly LookupAddress[];
  try {
    addresses = await (opts.resolve ?? systemResolve)(url.hostname);
  } catch {
    throw new PushEndpointError("endpoint host does not resolve");
  }
  if (addresses.length === 0) throw new PushEndpointError("endpoint host does not resolve");
  if (addresses.some((a) => !isPublicAddress(a.address))) throw new PushEndpointError("endpoint host resolves to an address that is not public");
}

/** The send-time check of an IP-literal host (a connection to a literal does no lookup, so guardedLookup never sees it). */
export function checkLiteralAtSend(url: URL, allowPrivate: boolean): void {
  if (allowPrivate) return;
  const literal = literalHost(url);
  if (literal !== undefined && !isPublicAddress(literal)) throw new PushEndpointError("endpoint address is not public");
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for the push agent's sockets: resolves as usual, and fails the
 * connection when any address of the name is not public, so the address
 * dialled is always one that was checked (no window for a rebinding between a
 * check and the connect). With `allowPrivate` it is the system lookup.
 */
export function guardedLookup(opts: { allowPrivate: boolean; resolve?: Resolve }): LookupFunction {
  const resolve = opts.resolve ?? systemResolve;
  const lookup = (hostname: string, options: LookupOptions | LookupAllOptions, callback: LookupCallback): void => {
    resolve(hostname).then(
      (all) => {
        const family = typeof options === "object" && options.family !== undefined && options.family !== 0 ? Number(options.family) : 0;
        const addresses = family === 0 ? all : all.filter((a) => a.family === family);
        if (addresses.length === 0) {
          const err: NodeJS.ErrnoException = new Error(`no address for ${hostname}`);
          err.code = "ENOTFOUND";
          return callback(err, "");
        }
        if (!opts.allowPrivate && addresses.some((a) => !isPublicAddress(a.address))) {
          return callback(new PushEndpointError("endpoint host resolves to an address that is not public"), "");
        }
        if (typeof options === "object" && options.all === true) return callback(null, [...addresses]);
        const first = addresses[0]!;
        callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, ""),
    );
  };
  return lookup as unknown as LookupFunction;
}
