// The pages a viewer, a broadcaster and an uploader open. Their files are static assets (wrangler `[assets]`,
// bundled by web/build.ts) served as they are; the page routes below carry an id in the path, so the Worker
// answers them with the page's HTML from the ASSETS binding, under a Content-Security-Policy that allows only
// the page's own scripts.
import { Hono } from "hono";
import { errorResponse } from "../auth/errors.ts";
import type { AppEnv } from "../env.ts";

/**
 * Scripts and styles only from this origin. Media, thumbnails and sockets may come from elsewhere: playback
 * is served by the CDN (or the media node locally) and the page talks to this Worker's WebSockets.
 */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob: https: http:",
  "media-src 'self' blob: https: http:",
  "connect-src 'self' ws: wss: https: http:",
  "worker-src 'self' blob:",
  "frame-ancestors 'self'",
  "base-uri 'none'",
  "form-action 'self'",
].join("; ");

const PAGES = { watch: "/watch.html", studio: "/studio.html", upload: "/upload.html", call: "/call.html" } as const;

async function page(c: { env: AppEnv["Bindings"]; req: { url: string } }, file: string): Promise<Response> {
  if (!c.env.ASSETS) return errorResponse(503, "pages_unavailable", "the pages are not configured on this Worker ([assets] in wrangler.toml)");
  const res = await c.env.ASSETS.fetch(new URL(file, c.req.url));
  if (!res.ok) return errorResponse(503, "pages_unavailable", "the pages are not built; run `node web/build.ts`");
  const headers = new Headers(res.headers);
  headers.set("content-security-policy", PAGE_CSP);
  headers.set("x-content-type-options", "nosniff");
  headers.set("referrer-policy", "same-origin");
  headers.set("cache-control", "no-cache");
  return new Response(res.body, { status: 200, headers });
}

export const webRoutes = new Hono<AppEnv>();
webRoutes.get("/", (c) => c.redirect("/studio", 302));
webRoutes.get("/watch/:id", (c) => page(c, PAGES.watch));
webRoutes.get("/studio", (c) => page(c, PAGES.studio));
webRoutes.get("/upload", (c) => page(c, PAGES.upload));
webRoutes.get("/call/:room", (c) => page(c, PAGES.call));
