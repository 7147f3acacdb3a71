// Short-lived TURN credentials in the time-limited shared-secret form ("TURN REST API",
// draft-uberti-behave-turn-rest-00) that coturn (`use-auth-secret` + `static-auth-secret`), eturnal, Pion and most
// hosted TURN services accept: the TURN server and this edge share a secret and never talk to each other.
//   username   = "<expiry, unix seconds>:<user id>"
//   credential = base64(HMAC-SHA1(secret, username))
// The server recomputes the credential from the username and refuses it once the expiry has passed; the user id
// in it makes allocations traceable to a user in the TURN server's logs.

/** One STUN or TURN server entry, in the shape RTCPeerConnection's `iceServers` takes. */
export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export interface TurnCredential {
  username: string;
  credential: string;
  /** unix seconds the credential stops working */
  expiresAt: number;
}

function base64(bytes: ArrayBuffer): string {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

/** The credential for `userId`, valid for `ttlS` seconds from `nowS`. */
export async function mintTurnCredential(secret: string, userId: string, ttlS: number, nowS = Math.floor(Date.now() / 1000)): Promise<TurnCredential> {
  const expiresAt = nowS + ttlS;
  const username = `${expiresAt}:${userId}`;
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(username));
  return { username, credential: base64(mac), expiresAt };
}

/** What GET /calls/ice-servers answers: STUN servers as they are, TURN servers with this user's credential. */
export async function iceServersFor(
  config: { stunUrls: string[]; turnUrls: string[]; turnSecret?: string; ttlS: number },
  userId: string,
  nowS = Math.floor(Date.now() / 1000),
): Promise<{ iceServers: IceServer[]; ttlS: number; expiresAt: number }> {
  const iceServers: IceServer[] = [];
  if (config.stunUrls.length > 0) iceServers.push({ urls: config.stunUrls });
  if (config.turnUrls.length > 0 && config.turnSecret) {
    const { username, credential } = await mintTurnCredential(config.turnSecret, userId, config.ttlS, nowS);
    iceServers.push({ urls: config.turnUrls, username, credential });
  }
  return { iceServers, ttlS: config.ttlS, expiresAt: nowS + config.ttlS };
}
