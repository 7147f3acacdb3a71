// Edge authentication: JWT verification, where tokens are found, the HTTP middleware, and the verified
// user handed to Durable Objects.
export { DEFAULT_ROLE, ROLES, type Role, roomAllowed, userFromRequest, VERIFIED_CLAIMS_HEADER, type VerifiedUser } from "./claims.ts";
export { errorBody, errorResponse } from "./errors.ts";
export { answerSubprotocol, guardPartyRequest, isPublicParty, PUBLIC_PARTIES, type PublicParty, stripInternalHeaders } from "./party-guard.ts";
export { requireUser } from "./middleware.ts";
export { APP_SUBPROTOCOL, extractToken, type ExtractedToken, TOKEN_SUBPROTOCOL_PREFIX } from "./token.ts";
export { MAX_TOKEN_BYTES, type VerifyOptions, type VerifyResult, verifyJwt } from "./verify.ts";
