// What every page does first: sign in, then the inbox bell. Returns null (with the reason on the page) when
// there is no token to be had.
import { InboxClient } from "../../shared/client/inbox-client.ts";
import { pageToken, SignInError, signIn } from "./auth.ts";
import { mountBell } from "./bell.ts";
import { showAlert } from "./dom.ts";

export interface PageSession {
  token: string;
  inbox: InboxClient;
}

export async function bootPage(): Promise<PageSession | null> {
  let token: string;
  try {
    token = await signIn();
  } catch (error) {
    if (!(error instanceof SignInError)) showAlert(`Sign-in failed: ${(error as Error).message}`);
    return null;
  }
  const inbox = new InboxClient({ baseUrl: location.origin, token: pageToken });
  mountBell(inbox);
  inbox.on("error", (e) => e.fatal && showAlert(`Notifications unavailable: ${e.message}`, { key: "inbox" }));
  inbox.connect().catch(() => undefined);
  return { token, inbox };
}

/** GET with the page's token; null for 404 (no such thing, or no such API on this edge). */
export async function getJson<T>(path: string): Promise<T | null> {
  const token = await pageToken("connect");
  const res = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  if (res.status === 404) return null;
  const body = (await res.json().catch(() => ({}))) as T & { error?: { message?: string } };
  if (!res.ok) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
  return body;
}

/** Report unexpected failures in words instead of leaving a blank or frozen page. */
export function reportUncaught(): void {
  addEventListener("unhandledrejection", (ev) => showAlert(`Something went wrong: ${(ev.reason as Error)?.message ?? String(ev.reason)}`, { key: "uncaught" }));
  addEventListener("error", (ev) => showAlert(`Something went wrong: ${ev.message}`, { key: "uncaught" }));
}
