// Signed, expiring image URLs served and verified by the Worker itself: HMAC-SHA256 over the
// object key and the expiry. (Local R2 has no S3 endpoint; aws4fetch presigning is the
// production alternative.) No link outlives MAX_SIGNED_URL_TTL_SECONDS, whoever signed it: the
// signer never goes beyond it and the verifier refuses an expiry beyond it.
import type { Config } from "../config";
import { base64url, hmacSha256, timingSafeEqual } from "../crypto";

async function hmac(secret: string, message: string): Promise<string> {
  return base64url(await hmacSha256(secret, message));
}

export type SigningPolicy = Pick<Config, "signingSecret" | "signedUrlTtlSeconds" | "maxSignedUrlTtlSeconds">;

/** `images/<owner>/<file>` → `<origin>/images/<owner>/<file>?exp=<unix s>&sig=<hmac>` */
export async function signImageUrl(origin: string, key: string, policy: SigningPolicy, nowMs = Date.now()): Promise<string> {
  const exp = Math.floor(nowMs / 1000) + Math.min(policy.signedUrlTtlSeconds, policy.maxSignedUrlTtlSeconds);
  const sig = await hmac(policy.signingSecret, `${key}\n${exp}`);
  return `${origin}/${key}?exp=${exp}&sig=${sig}`;
}

export type SignatureCheck = "valid" | "invalid" | "expired" | "beyond_ceiling";

export async function verifyImageSignature(
  key: string,
  exp: string | undefined,
  sig: string | undefined,
  policy: Pick<SigningPolicy, "signingSecret" | "maxSignedUrlTtlSeconds">,
  nowMs = Date.now(),
): Promise<SignatureCheck> {
  if (!exp || !sig || !/^\d{1,12}$/.test(exp)) return "invalid";
  if (Number(exp) > Math.floor(nowMs / 1000) + policy.maxSignedUrlTtlSeconds) return "beyond_ceiling";
  const expected = await hmac(policy.signingSecret, `${key}\n${exp}`);
  if (!timingSafeEqual(expected, sig)) return "invalid";
  return Number(exp) * 1000 < nowMs ? "expired" : "valid";
}
