// The push payload encryption in workerd, checked against RFC 8291 Appendix A byte for byte (the published example:
// fixed salt and sender key, no padding), and decrypted the way a device does (RFC 8291 §3.4 from the receiving
// side, written here independently of the sending code) for a fresh, padded message.
import { describe, expect, it } from "vitest";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "../../../shared/encoding.ts";
import { ecdhWith, encryptPushPayload, MAX_PLAINTEXT_BYTES, RECORD_SIZE } from "./web-push-crypto.ts";

// RFC 8291 Appendix A (published test data, not credentials)
const RFC = {
  plaintext: "When I grow up, I want to be a watermelon",
  asPublic: "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
  asPrivate: "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
  uaPublic: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
  uaPrivate: "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
  salt: "DGv6ra1nlYgDCS1FRnbzlw",
  auth: "BTBZMqHH6r4Tts7J_aSIgg",
  body:
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_" +
    "yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
};

const bytes = (b64u: string) => fromBase64Url(b64u)!;

/** An ECDH key pair from a raw private scalar and its uncompressed public point. */
async function keyPair(publicB64u: string, privateB64u: string): Promise<CryptoKeyPair> {
  const pub = bytes(publicB64u);
  const jwk = { kty: "EC", crv: "P-256", x: toBase64Url(pub.subarray(1, 33)), y: toBase64Url(pub.subarray(33, 65)), d: privateB64u };
  const privateKey = await crypto.subtle.importKey("jwk", jwk, { name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
  const publicKey = await crypto.subtle.importKey("raw", pub, { name: "ECDH", namedCurve: "P-256" }, true, []);
  return { privateKey, publicKey };
}

async function hmac(key: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
}
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.byteLength));
  return out;
};

/** What the receiving browser does with a body (HKDF written out as HMACs, RFC 5869). */
async function decrypt(body: Uint8Array<ArrayBuffer>, ua: CryptoKeyPair, uaPublic: Uint8Array<ArrayBuffer>, auth: Uint8Array<ArrayBuffer>): Promise<string> {
  const salt = body.slice(0, 16);
  const rs = new DataView(body.buffer, body.byteOffset).getUint32(16);
  const idlen = body[20]!;
  const asPublic = body.slice(21, 21 + idlen);
  const ciphertext = body.slice(21 + idlen);
  expect(rs).toBe(RECORD_SIZE);
  const asKey = await crypto.subtle.importKey("raw", asPublic, { name: "ECDH", namedCurve: "P-256" }, false, []);
  const ecdh = new Uint8Array(await crypto.subtle.deriveBits(ecdhWith(asKey), ua.privateKey, 256));
  const prkKey = await hmac(auth, ecdh);
  const ikm = (await hmac(prkKey, concat(utf8("WebPush: info\0"), uaPublic, asPublic, new Uint8Array([1])))).slice(0, 32);
  const prk = await hmac(salt, ikm);
  const cek = (await hmac(prk, concat(utf8("Content-Encoding: aes128gcm\0"), new Uint8Array([1])))).slice(0, 16);
  const nonce = (await hmac(prk, concat(utf8("Content-Encoding: nonce\0"), new Uint8Array([1])))).slice(0, 12);
  const aes = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["decrypt"]);
  const padded = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce }, aes, ciphertext));
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  expect(padded[end]).toBe(2); // the last record's delimiter
  return fromUtf8(padded.subarray(0, end));
}

describe("Web Push payload encryption (RFC 8291, aes128gcm)", () => {
  it("reproduces the RFC's example byte for byte", async () => {
    const body = await encryptPushPayload(RFC.uaPublic, RFC.auth, utf8(RFC.plaintext), {
      salt: bytes(RFC.salt),
      senderKeys: await keyPair(RFC.asPublic, RFC.asPrivate),
      padTo: utf8(RFC.plaintext).byteLength,
    });
    expect(toBase64Url(body)).toBe(RFC.body);
  });

  it("a fresh message: padded to one full record, new salt and sender key each time, and the device decrypts it", async () => {
    const ua = await keyPair(RFC.uaPublic, RFC.uaPrivate);
    const text = JSON.stringify({ id: "n-1", kind: "mention", title: "Ana mentioned you", body: "é ✓" });
    const a = await encryptPushPayload(RFC.uaPublic, RFC.auth, utf8(text));
    const b = await encryptPushPayload(RFC.uaPublic, RFC.auth, utf8(text));
    expect(a.byteLength).toBe(RECORD_SIZE);
    expect(b.byteLength).toBe(RECORD_SIZE);
    expect(toBase64Url(a.subarray(0, 16))).not.toBe(toBase64Url(b.subarray(0, 16))); // salt
    expect(toBase64Url(a.subarray(21, 86))).not.toBe(toBase64Url(b.subarray(21, 86))); // sender key
    expect(await decrypt(a, ua, bytes(RFC.uaPublic), bytes(RFC.auth))).toBe(text);
    expect(await decrypt(b, ua, bytes(RFC.uaPublic), bytes(RFC.auth))).toBe(text);
    // the largest payload still fits the one record
    const max = "x".repeat(MAX_PLAINTEXT_BYTES);
    expect(await decrypt(await encryptPushPayload(RFC.uaPublic, RFC.auth, utf8(max)), ua, bytes(RFC.uaPublic), bytes(RFC.auth))).toBe(max);
  });

  it("refuses keys that are not a device's and a payload over one record", async () => {
    await expect(encryptPushPayload("BCVx", RFC.auth, utf8("x"))).rejects.toThrow(/p256dh/);
    await expect(encryptPushPayload(RFC.uaPublic, "AAAA", utf8("x"))).rejects.toThrow(/auth/);
    // a 65-byte string that is not a point on the curve
    await expect(encryptPushPayload(toBase64Url(concat(new Uint8Array([4]), new Uint8Array(64).fill(7))), RFC.auth, utf8("x"))).rejects.toThrow();
    await expect(encryptPushPayload(RFC.uaPublic, RFC.auth, new Uint8Array(MAX_PLAINTEXT_BYTES + 1))).rejects.toThrow(/at most 3993/);
  });
});
