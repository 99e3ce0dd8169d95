import { describe, expect, it } from "vitest";
import { clientAddress, parseForwardedEntry, parseTrustedProxies } from "./client-address.js";

describe("parseTrustedProxies", () => {
  it("matches addresses and CIDR ranges of both families, IPv4-in-IPv6 as IPv4", () => {
    const t = parseTrustedProxies(" 10.0.0.0/8, 192.168.1.7 ,fd00::/8,::1, 172.16.0.0/12");
    expect(t.any).toBe(true);
    for (const ip of ["10.0.0.1", "10.255.255.255", "::ffff:10.2.3.4", "192.168.1.7", "fd12:3456::1", "::1", "172.31.0.9"]) expect(t.has(ip), ip).toBe(true);
    for (const ip of ["11.0.0.1", "9.255.255.255", "192.168.1.8", "fe80::1", "::2", "172.32.0.1", "unknown", "", "10.0.0.1.5"]) expect(t.has(ip), ip).toBe(false);
  });

  it("trusts nothing when empty, and refuses what is not an address or range", () => {
    expect(parseTrustedProxies("").any).toBe(false);
    expect(parseTrustedProxies(" , ").has("127.0.0.1")).toBe(false);
    for (const bad of ["localhost", "10.0.0.0/33", "::/129", "10.0.0.0/8/1", "10.0.0.0/", "10.0.0.0/-1", "1.2.3", "*"]) {
      expect(() => parseTrustedProxies(bad), bad).toThrow();
    }
    expect(parseTrustedProxies("0.0.0.0/0").has("203.0.113.9")).toBe(true);
  });
});

describe("parseForwardedEntry", () => {
  it("reads plain, ported, bracketed and mapped addresses and nothing else", () => {
    expect(parseForwardedEntry(" 203.0.113.9 ")).toBe("203.0.113.9");
    expect(parseForwardedEntry("203.0.113.9:51234")).toBe("203.0.113.9");
    expect(parseForwardedEntry("2001:DB8::1")).toBe("2001:db8::1");
    expect(parseForwardedEntry("[2001:db8::1]:443")).toBe("2001:db8::1");
    expect(parseForwardedEntry("[2001:db8::1]")).toBe("2001:db8::1");
    expect(parseForwardedEntry("::ffff:198.51.100.2")).toBe("198.51.100.2");
    for (const bad of ["unknown", "_hidden", "", "fe80::1%eth0", "1.2.3.4:port", "1.2.3.4.5", "[1.2.3.4", "<script>"]) expect(parseForwardedEntry(bad), bad).toBeUndefined();
  });
});

describe("clientAddress", () => {
  const proxies = parseTrustedProxies("10.0.0.0/8,::1");

  it("is the socket's address when the peer is not a trusted proxy, whatever it claims", () => {
    expect(clientAddress("203.0.113.9", "1.1.1.1", proxies)).toBe("203.0.113.9");
    expect(clientAddress("::ffff:203.0.113.9", "1.1.1.1", proxies)).toBe("203.0.113.9");
    expect(clientAddress("10.0.0.5", "1.1.1.1", parseTrustedProxies(""))).toBe("10.0.0.5");
    expect(clientAddress(undefined, "1.1.1.1", proxies)).toBe("unknown");
  });

  it("takes the right-most address that is not a trusted proxy", () => {
    expect(clientAddress("10.0.0.5", "198.51.100.7", proxies)).toBe("198.51.100.7");
    // A client's own made-up entries sit left of what our proxies appended.
    expect(clientAddress("10.0.0.5", "6.6.6.6, 198.51.100.7", proxies)).toBe("198.51.100.7");
    expect(clientAddress("10.0.0.5", "6.6.6.6, 198.51.100.7, 10.1.1.1, 10.2.2.2", proxies)).toBe("198.51.100.7");
    // Several headers are one list, in order.
    expect(clientAddress("::1", ["6.6.6.6", "198.51.100.7, 10.1.1.1"], proxies)).toBe("198.51.100.7");
    expect(clientAddress("::ffff:10.0.0.5", "[2001:db8::7]:1234", proxies)).toBe("2001:db8::7");
  });

  it("stops at an entry no proxy would write, and keeps the last trusted hop", () => {
    expect(clientAddress("10.0.0.5", "198.51.100.7, garbage", proxies)).toBe("10.0.0.5");
    expect(clientAddress("10.0.0.5", "198.51.100.7, unknown, 10.3.3.3", proxies)).toBe("10.3.3.3");
    // Empty entries (a stray comma) are skipped.
    expect(clientAddress("10.0.0.5", "198.51.100.7, ,", proxies)).toBe("198.51.100.7");
  });

  it("is the socket's address with no header, and the left-most when every hop is trusted", () => {
    expect(clientAddress("10.0.0.5", undefined, proxies)).toBe("10.0.0.5");
    expect(clientAddress("10.0.0.5", "", proxies)).toBe("10.0.0.5");
    expect(clientAddress("10.0.0.5", "10.9.9.9, 10.8.8.8", proxies)).toBe("10.9.9.9");
  });
});
