// Images that arrive in request bodies, decoded as sd-webui's `decode_base64_to_image` does:
// raw base64, a `data:image/...;base64,` URI, or an http(s) URL (fetched only when the
// `api_enable_requests` setting allows it, and never from a non-global address while
// `api_forbid_local_requests` is on).
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import { httpException } from "./errors.ts";
import { type DecodedImage, decodeImage } from "./image-codec.ts";
import type { OptionsStore } from "./options-store.ts";

const URL_FETCH_TIMEOUT_MS = 30_000;
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

const NON_GLOBAL = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 3],
] as const)
  NON_GLOBAL.addSubnet(network, prefix, "ipv4");
for (const [network, prefix] of [
  ["::", 127],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
  ["::ffff:0:0", 96],
] as const) {
  NON_GLOBAL.addSubnet(network, prefix, "ipv6");
}

async function isGlobalUrl(url: string): Promise<boolean> {
  try {
    const hostname = new URL(url).hostname.replace(/^\[|\]$/g, "");
    const addresses = isIP(hostname) ? [{ address: hostname, family: isIP(hostname) }] : await lookup(hostname, { all: true });
    return addresses.every(({ address, family }) => !NON_GLOBAL.check(address, family === 6 ? "ipv6" : "ipv4"));
  } catch {
    return false;
  }
}

async function fetchImage(url: string, options: OptionsStore): Promise<DecodedImage> {
  if (!options.get("api_enable_requests")) throw httpException(500, "Requests not allowed");
  if (options.get("api_forbid_local_requests") && !(await isGlobalUrl(url))) {
    throw httpException(500, "Request to local resource not allowed");
  }
  try {
    const userAgent = options.get("api_useragent");
    const response = await fetch(url, {
      headers: typeof userAgent === "string" && userAgent ? { "user-agent": userAgent } : {},
      signal: AbortSignal.timeout(URL_FETCH_TIMEOUT_MS),
    });
    return decodeImage(Buffer.from(await response.arrayBuffer()));
  } catch {
    throw httpException(500, "Invalid image url");
  }
}

export async function decodeInputImage(encoded: string, options: OptionsStore): Promise<DecodedImage> {
  if (encoded.startsWith("http://") || encoded.startsWith("https://")) return fetchImage(encoded, options);
  const base64 = encoded.startsWith("data:image/") ? (encoded.split(";")[1]?.split(",")[1] ?? "") : encoded;
  try {
    if (!BASE64.test(base64)) throw new Error("not base64");
    return decodeImage(Buffer.from(base64, "base64"));
  } catch {
    throw httpException(500, "Invalid encoded image");
  }
}
