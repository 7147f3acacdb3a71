// Where the pages get their JWT. Production apps hand it over in one of two ways (README "Pages: sign-in"):
//   - a cookie `pulsecast_token` their backend sets on the Pulsecast domain (Secure, SameSite=Strict), renewed
//     by the app before it expires; the page re-reads it whenever the server refuses the one it has;
//   - a link to the page with `#token=<JWT>`: the fragment never reaches a server or its logs; the page moves it
//     to sessionStorage and removes it from the address bar.
// For local runs only, with DEV_SIGN_IN on, the page offers a dev sign-in form that mints a token at the edge.
import { type TokenReason, tokenExpiry } from "../../shared/client/token.ts";
import { $, h } from "./dom.ts";

const STORAGE_KEY = "pulsecast.token";
const COOKIE = "pulsecast_token";
/** A token this close to its expiry is not used for a new connection. */
const EXPIRY_MARGIN_S = 10;

export class SignInError extends Error {}

function usable(token: string | null | undefined): token is string {
  if (!token) return false;
  const exp = tokenExpiry(token);
  return exp === undefined || exp > Date.now() / 1000 + EXPIRY_MARGIN_S;
}

function fromFragment(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (!token) return;
  sessionStorage.setItem(STORAGE_KEY, token);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
}

function fromCookie(): string | null {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === COOKIE) return decodeURIComponent(v.join("="));
  }
  return null;
}

/** The best token available now, or null. */
export function currentToken(): string | null {
  const stored = sessionStorage.getItem(STORAGE_KEY);
  if (usable(stored)) return stored;
  const cookie = fromCookie();
  return usable(cookie) ? cookie : null;
}

/** The user id (`sub`) and name of a token, unverified: for display only. */
export function tokenUser(token: string): { userId: string; name?: string; role?: string } {
  try {
    const part = token.split(".")[1] ?? "";
    const claims = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="))) as Record<string, unknown>;
    return { userId: String(claims.sub ?? ""), ...(typeof claims.name === "string" ? { name: claims.name } : {}), ...(typeof claims.role === "string" ? { role: claims.role } : {}) };
  } catch {
    return { userId: "" };
  }
}

let devAvailable: Promise<boolean> | null = null;
function devSignInAvailable(): Promise<boolean> {
  devAvailable ??= fetch("/dev/sign-in").then((r) => r.ok).catch(() => false);
  return devAvailable;
}

/** Shows the dev sign-in form in `#signin` and resolves with the minted token. */
function devSignIn(message?: string): Promise<string> {
  const box = $("signin");
  box.hidden = false;
  box.replaceChildren();
  const name = h("input", { id: "signin-name", name: "name", required: true, maxlength: 100, autocomplete: "nickname" });
  const role = h("select", { id: "signin-role", name: "role" }, ...["member", "moderator", "broadcaster", "viewer"].map((r) => h("option", { value: r }, r)));
  const error = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "Dev sign-in"),
    h("p", { class: "muted" }, message ?? "Local run: pick any name. Production apps hand this page a token instead."),
    h("label", { for: "signin-name" }, "Name"),
    name,
    h("label", { for: "signin-role" }, "Role"),
    role,
    error,
    h("button", { type: "submit" }, "Sign in"),
  );
  box.append(form);
  name.focus();
  return new Promise((resolve) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      const res = await fetch("/dev/sign-in", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: name.value, role: role.value }) }).catch(() => null);
      if (!res) return void (error.textContent = "The server could not be reached. Try again.");
      const body = (await res.json().catch(() => ({}))) as { token?: string; error?: { message?: string } };
      if (!res.ok || !body.token) return void (error.textContent = body.error?.message ?? `Sign-in refused (HTTP ${res.status}).`);
      sessionStorage.setItem(STORAGE_KEY, body.token);
      box.hidden = true;
      box.replaceChildren();
      renderAccount(body.token);
      resolve(body.token);
    });
  });
}

/** Waits for a token: one handed over by the app, else the dev sign-in when it is on; else explains, in words. */
export async function signIn(message?: string): Promise<string> {
  fromFragment();
  const token = currentToken();
  if (token) {
    renderAccount(token);
    return token;
  }
  // A token was handed over but is past its expiry: say so rather than "not signed in".
  const stale = sessionStorage.getItem(STORAGE_KEY) ?? fromCookie();
  if (!message && stale) message = "Your sign-in has expired. Sign in again to continue.";
  if (await devSignInAvailable()) return devSignIn(message);
  const box = $("signin");
  box.hidden = false;
  box.replaceChildren(
    h("div", { class: "card", role: "alert" }, h("h2", {}, "Sign-in needed"), h("p", {}, message ?? "You are not signed in."), h("p", {}, "Open this page from the app you use Pulsecast with: it signs you in here.")),
  );
  throw new SignInError(message ?? "not signed in");
}

/** The token source the clients use: re-reads what the app provides, and asks again when the server refused it. */
export const pageToken = async (reason: TokenReason): Promise<string> => {
  if (reason === "refused") {
    const stored = sessionStorage.getItem(STORAGE_KEY);
    // The refused token is what the clients held: drop it so a renewed cookie or a new sign-in is used.
    if (stored) sessionStorage.removeItem(STORAGE_KEY);
    return signIn("Your sign-in has expired. Sign in again to continue.");
  }
  return currentToken() ?? signIn("Your sign-in has expired. Sign in again to continue.");
};

function renderAccount(token: string): void {
  const user = tokenUser(token);
  const box = document.getElementById("account");
  if (!box) return;
  const out = h("button", { type: "button", class: "link" }, "Sign out");
  out.addEventListener("click", () => {
    sessionStorage.removeItem(STORAGE_KEY);
    location.reload();
  });
  box.replaceChildren(h("span", { class: "who" }, `Signed in as ${user.name ?? user.userId}`), " ", out);
}
