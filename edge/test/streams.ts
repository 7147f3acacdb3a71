// Streams API and playback clients for tests inside workerd: requests through the front Worker with real JWTs
// or the internal token, and the stream views they answer with.
import { exports } from "cloudflare:workers";
import { mintHs256 } from "../../test/helpers/jwt.ts";
import { env } from "./clients.ts";

export { env, newUser } from "./clients.ts";

export const edge = (path: string, init?: RequestInit) => exports.default.fetch(`http://edge${path}`, init);

export function jwt(sub: string, role = "broadcaster", rooms?: string[]): Promise<string> {
  return mintHs256(env.JWT_SECRET!, { sub, claims: { role, ...(rooms ? { rooms } : {}) } });
}

/** A JSON request with a bearer token (a JWT, the internal token, or none). */
export async function api(method: string, path: string, token: string | null, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  return edge(path, { method, headers, ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}) });
}

export interface StreamView {
  id: string;
  roomId: string;
  title: string | null;
  status: string;
  rtmp?: { url: string; streamKey: string };
  obs?: { server: string; key: string };
  playback: { policy: string; playbackId: string; url?: string };
  keyVersion?: number;
  current: { broadcastId: string | null; startedAt: string; liveAt: string | null; renditions: unknown[] } | null;
  startedAt: string | null;
  renditions: unknown[];
  viewers: number | null;
  recordings: { mediaId: string; url?: string; path?: string; durationS: number }[];
}

export async function createStream(owner: string, body: Record<string, unknown> = {}, rooms?: string[]): Promise<StreamView> {
  const res = await api("POST", "/streams", await jwt(owner, "broadcaster", rooms), body);
  if (res.status !== 201) throw new Error(`POST /streams answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as StreamView;
}

export async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { error?: { code?: string; message?: string } };
  if (!body.error?.message) throw new Error(`refusal without a message: ${JSON.stringify(body)}`);
  return body.error.code ?? "(none)";
}

export async function keyCheck(keys: { streamId: string; kv: number }[], token: string | null = env.INTERNAL_API_TOKEN!): Promise<Response> {
  return api("POST", "/internal/streams/key-check", token, { keys });
}

export async function playbackToken(streamId: string, token: string, body: Record<string, unknown> = {}): Promise<{ token: string; kid: string; url: string; expiresAt: string; notBefore: string }> {
  const res = await api("POST", `/streams/${streamId}/playback-tokens`, token, body);
  if (res.status !== 201) throw new Error(`playback-tokens answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as { token: string; kid: string; url: string; expiresAt: string; notBefore: string };
}
