// Signed, expiring image URLs served and verified by the Worker itself: HMAC-SHA256 over the
// object key and the expiry. (Local R2 has no S3 endpoint; aws4fetch presigning is the
// production alternative.)
import { base64url, hmacSha256, timingSafeEqual } from "../crypto";

async function hmac(secret: string, message: string): Promise<string> {
  return base64url(await hmacSha256(secret, message));
}

/** `images/<owner>/<file>` → `<origin>/images/<owner>/<file>?exp=<unix s>&sig=<hmac>` */
export async function signImageUrl(origin: string, key: string, secret: string, ttlSeconds: number, nowMs = Date.now()): Promise<string> {
  const exp = Math.floor(nowMs / 1000) + ttlSeconds;
  const sig = await hmac(secret, `${key}\n${exp}`);
  return `${origin}/${key}?exp=${exp}&sig=${sig}`;
}

export type SignatureCheck = "valid" | "invalid" | "expired";

export async function verifyImageSignature(
  key: string,
  exp: string | undefined,
  sig: string | undefined,
  secret: string,
  nowMs = Date.now(),
): Promise<SignatureCheck> {
  if (!exp || !sig || !/^\d{1,12}$/.test(exp)) return "invalid";
  const expected = await hmac(secret, `${key}\n${exp}`);
  if (!timingSafeEqual(expected, sig)) return "invalid";
  return Number(exp) * 1000 < nowMs ? "expired" : "valid";
}
