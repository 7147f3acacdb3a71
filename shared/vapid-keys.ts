// A fresh VAPID key pair (RFC 8292: ECDSA P-256) in the form the edge's settings take: the public key as base64url
// of the uncompressed point (what browsers get as applicationServerKey) and the private key as base64url of the
// scalar (the JWK `d`). Used by `npm start`, tests and the benchmark; production keys are made once and kept.
import { toBase64Url } from "./encoding.ts";

export async function generateVapidKeys(): Promise<{ publicKey: string; privateKey: string }> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  return { publicKey: toBase64Url(raw), privateKey: jwk.d! };
}
