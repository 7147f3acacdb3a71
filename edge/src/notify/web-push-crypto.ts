// The encryption of a Web Push payload for one device: RFC 8291 (Message Encryption for Web Push) with the
// aes128gcm content coding of RFC 8188, in Web Crypto. It does the same as @block65/webcrypto-web-push's
// encryptNotification (one record padded to 4096 octets, so every body has the same size and sizes leak nothing)
// with the work a push costs cut down, because the edge encrypts once per device per notification:
// - the device's public key is imported once per isolate and reused (a subscription's keys only change when the
//   browser re-subscribes, which stores new text under the same id);
// - HKDF is Web Crypto's own (one import and one derivation per key) instead of HMAC chains built in JavaScript;
// - the body is assembled with typed-array copies, not by spreading 4,096 bytes through a JavaScript array.
// What stays per message: a fresh sender ECDH key pair and a random 16-byte salt, so no two messages share a
// content-encryption key or nonce.
import { fromBase64Url, utf8 } from "../../../shared/encoding.ts";

/** RFC 8188 record size: the one record fills it, header included (a push service need only take 4096 octets). */
export const RECORD_SIZE = 4096;
/** salt (16) || rs (4) || idlen (1) || keyid = the sender's public key (65) */
const HEADER_SIZE = 16 + 4 + 1 + 65;
/** Largest payload one record carries: the record less the header, the 0x02 delimiter and the 16-byte GCM tag. */
export const MAX_PLAINTEXT_BYTES = RECORD_SIZE - HEADER_SIZE - 17;

const KEY_INFO_PREFIX = utf8("WebPush: info\0");
const CEK_INFO = utf8("Content-Encoding: aes128gcm\0");
const NONCE_INFO = utf8("Content-Encoding: nonce\0");

interface DeviceKeys {
  publicBytes: Uint8Array<ArrayBuffer>;
  publicKey: CryptoKey;
  auth: Uint8Array<ArrayBuffer>;
}

/**
 * Imported device keys by `p256dh|auth` text; bounded, cleared when full (a re-import is cheap, a leak is not).
 * Only finished imports are kept: objects of one isolate share this map, and a promise started by one of them is
 * not one another should wait on.
 */
const deviceKeys = new Map<string, DeviceKeys>();
const DEVICE_KEYS_MAX = 10_000;

/** Checks and imports a subscription's keys (RFC 8291 §3.2: a 65-byte uncompressed P-256 point, a 16-byte secret). */
async function importDeviceKeys(p256dh: string, auth: string): Promise<DeviceKeys> {
  const cacheKey = `${p256dh}|${auth}`;
  const cached = deviceKeys.get(cacheKey);
  if (cached) return cached;
  const publicBytes = fromBase64Url(p256dh.replace(/=+$/, ""));
  const authBytes = fromBase64Url(auth.replace(/=+$/, ""));
  if (!publicBytes || publicBytes.byteLength !== 65 || publicBytes[0] !== 0x04) throw new Error("p256dh is not an uncompressed P-256 point (65 bytes, base64url)");
  if (!authBytes || authBytes.byteLength !== 16) throw new Error("auth is not a 16-byte secret (base64url)");
  const publicKey = await crypto.subtle.importKey("raw", publicBytes, { name: "ECDH", namedCurve: "P-256" }, false, []);
  const keys = { publicBytes, publicKey, auth: authBytes };
  if (deviceKeys.size >= DEVICE_KEYS_MAX) deviceKeys.clear();
  deviceKeys.set(cacheKey, keys);
  return keys;
}

type DeriveAlgorithm = Parameters<SubtleCrypto["deriveBits"]>[0];

/** ECDH parameters naming the peer's key. The Web Crypto member is `public`, which @cloudflare/workers-types spells `$public`. */
export function ecdhWith(peer: CryptoKey): DeriveAlgorithm {
  return { name: "ECDH", public: peer } as unknown as DeriveAlgorithm;
}

async function hkdf(ikm: BufferSource, salt: BufferSource, info: BufferSource, bits: number): Promise<Uint8Array<ArrayBuffer>> {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, bits));
}

/** Only for the RFC's published example: a fixed salt and sender key pair instead of fresh ones. */
export interface FixedInputs {
  salt: Uint8Array<ArrayBuffer>;
  senderKeys: CryptoKeyPair;
  /** pad the record only this far (the example is unpadded); default: to the full record */
  padTo?: number;
}

/**
 * The aes128gcm body of one push message for the device with these subscription keys (base64url).
 * Throws for keys that are not a device's (the subscription is unusable) and for a payload over MAX_PLAINTEXT_BYTES.
 */
export async function encryptPushPayload(p256dh: string, auth: string, plaintext: Uint8Array, fixed?: FixedInputs): Promise<Uint8Array<ArrayBuffer>> {
  if (plaintext.byteLength > MAX_PLAINTEXT_BYTES) throw new Error(`payload is ${plaintext.byteLength} bytes, at most ${MAX_PLAINTEXT_BYTES} fit one record`);
  const device = await importDeviceKeys(p256dh, auth);
  const salt = fixed?.salt ?? crypto.getRandomValues(new Uint8Array(16));
  const sender = fixed?.senderKeys ?? ((await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"])) as CryptoKeyPair);
  const senderPublic = new Uint8Array((await crypto.subtle.exportKey("raw", sender.publicKey)) as ArrayBuffer);
  const shared = await crypto.subtle.deriveBits(ecdhWith(device.publicKey), sender.privateKey, 256);

  // RFC 8291 §3.3: IKM = HKDF(salt = auth_secret, ikm = ECDH secret, info = "WebPush: info\0" || ua_public || as_public, 32)
  const keyInfo = new Uint8Array(KEY_INFO_PREFIX.byteLength + 130);
  keyInfo.set(KEY_INFO_PREFIX, 0);
  keyInfo.set(device.publicBytes, KEY_INFO_PREFIX.byteLength);
  keyInfo.set(senderPublic, KEY_INFO_PREFIX.byteLength + 65);
  const ikm = await hkdf(shared, device.auth, keyInfo, 256);
  // RFC 8188 §2.2-2.3: CEK and nonce from the salt and IKM (one HKDF extract, two expands).
  const prk = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const [cek, nonce] = await Promise.all([
    crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: CEK_INFO }, prk, 128),
    crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: NONCE_INFO }, prk, 96),
  ]);
  const aes = await crypto.subtle.importKey("raw", cek, { name: "AES-GCM" }, false, ["encrypt"]);

  // One record: the plaintext, the last-record delimiter 0x02, then zeros up to the padded size.
  const padded = new Uint8Array(Math.max(plaintext.byteLength, fixed?.padTo ?? MAX_PLAINTEXT_BYTES) + 1);
  padded.set(plaintext, 0);
  padded[plaintext.byteLength] = 0x02;
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce }, aes, padded));

  const body = new Uint8Array(HEADER_SIZE + ciphertext.byteLength);
  body.set(salt, 0);
  new DataView(body.buffer).setUint32(16, RECORD_SIZE);
  body[20] = 65;
  body.set(senderPublic, 21);
  body.set(ciphertext, HEADER_SIZE);
  return body;
}
