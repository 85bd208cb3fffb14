// Where a webhook may point: not at the Worker's own network's insides. Refused are loopback,
// "this network", private (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7), link-local
// (169.254/16 — the cloud metadata address among them — and fe80::/10), multicast and reserved
// addresses, `localhost` and the metadata host names. In local development loopback is allowed
// (a receiver on this machine); the rest never is. Addresses are judged after the WHATWG URL
// parser has normalised them, so decimal, hex and octal IPv4 (`http://2130706433/`,
// `http://0x7f.1/`) and IPv4-mapped IPv6 (`[::ffff:127.0.0.1]`) are the addresses they reach.
// Host names are judged by name only: the Worker cannot resolve them before its fetch.

type AddressKind = "loopback" | "internal" | "public";

const METADATA_HOSTS = new Set(["metadata.google.internal", "metadata"]);

function ipv4Kind(octets: readonly number[]): AddressKind {
  const [a = 0, b = 0] = octets;
  if (a === 127) return "loopback";
  if (a === 0 || a === 10 || a >= 224) return "internal";
  if (a === 172 && b >= 16 && b <= 31) return "internal";
  if (a === 192 && b === 168) return "internal";
  if (a === 169 && b === 254) return "internal";
  if (a === 100 && b >= 64 && b <= 127) return "internal";
  return "public";
}

function parseIpv4(host: string): number[] | null {
  const parts = host.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p))) return null;
  const octets = parts.map(Number);
  return octets.every((o) => o <= 255) ? octets : null;
}

/** The eight 16-bit groups of an IPv6 address as the URL parser writes it (no brackets, no dotted tail), or null. */
function parseIpv6(host: string): number[] | null {
  const halves = host.split("::");
  if (halves.length > 2) return null;
  const [head, tail] = halves.map((half) => (half === "" ? [] : half.split(":")));
  const groups = tail === undefined ? head! : [...head!, ...Array<string>(8 - head!.length - tail.length).fill("0"), ...tail];
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  return groups.map((g) => Number.parseInt(g, 16));
}

function ipv6Kind(g: readonly number[]): AddressKind {
  const embeddedV4 = () => ipv4Kind([g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff]);
  const zeroUpTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(7) && g[7] === 1) return "loopback";
  if (zeroUpTo(8)) return "internal";
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) reach an IPv4 address.
  if (zeroUpTo(5) && g[5] === 0xffff) return embeddedV4();
  if (zeroUpTo(6)) return embeddedV4();
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return embeddedV4();
  const first = g[0]!;
  if ((first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80 || (first & 0xff00) === 0xff00) return "internal";
  return "public";
}

function hostKind(hostname: string): AddressKind {
  const host = hostname.toLowerCase().replace(/\.+$/, "");
  if (host.startsWith("[") && host.endsWith("]")) {
    const groups = parseIpv6(host.slice(1, -1));
    return groups ? ipv6Kind(groups) : "internal";
  }
  const v4 = parseIpv4(host);
  if (v4) return ipv4Kind(v4);
  if (host === "localhost" || host.endsWith(".localhost")) return "loopback";
  if (METADATA_HOSTS.has(host)) return "internal";
  return "public";
}

/** Why `url` may not receive webhooks, or null when it may. `allowLoopback`: local development. */
export function webhookUrlRefusal(url: string, allowLoopback: boolean): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "not a URL";
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return "an http or https URL";
  const kind = hostKind(parsed.hostname);
  if (kind === "public" || (kind === "loopback" && allowLoopback)) return null;
  return `${parsed.hostname} is a ${kind === "loopback" ? "loopback" : "private, link-local or metadata"} address; webhooks go to public hosts only`;
}
