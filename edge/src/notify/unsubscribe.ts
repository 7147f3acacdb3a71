// Unsubscribe links in emails: `<EDGE_PUBLIC_URL>/notifications/unsubscribe?u=<userId>&s=<signature>`, an HMAC of
// the user id under UNSUBSCRIBE_SECRET, so a link works without a login and only for the user it was made for.
import { toBase64Url, utf8 } from "../../../shared/encoding.ts";
import { timingSafeEqualStrings } from "../internal/auth.ts";

async function sign(secret: string, userId: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", utf8(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, utf8(`unsubscribe-email\n${userId}`));
  return toBase64Url(new Uint8Array(mac));
}

export async function unsubscribeUrl(publicUrl: string, secret: string, userId: string): Promise<string> {
  const url = new URL("/notifications/unsubscribe", publicUrl);
  url.searchParams.set("u", userId);
  url.searchParams.set("s", await sign(secret, userId));
  return url.href;
}

export async function checkUnsubscribe(secret: string, userId: string, signature: string): Promise<boolean> {
  return timingSafeEqualStrings(signature, await sign(secret, userId));
}
