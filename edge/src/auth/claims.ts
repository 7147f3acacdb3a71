// What the front Worker knows about a caller once their JWT has been verified.
// The Worker passes it to Durable Objects in the VERIFIED_CLAIMS_HEADER, after deleting any client copy
// of that header, so an object can trust it (clients cannot reach an object except through the Worker).

export const VERIFIED_CLAIMS_HEADER = "x-pulsecast-verified-claims";

export type Role = "viewer" | "member" | "moderator" | "broadcaster";

export interface VerifiedUser {
  /** JWT `sub` */
  userId: string;
  role: Role;
  name?: string;
  avatar?: string;
  /** rooms this token may join: exact ids or patterns with a trailing `*`; absent means any room */
  rooms?: string[];
  /** token expiry, unix seconds (connections are not cut at expiry; reconnects need a fresh token) */
  exp: number;
}
