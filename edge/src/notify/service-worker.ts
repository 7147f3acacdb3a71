// The service worker a page registers (`navigator.serviceWorker.register("/push/sw.js")`) to show Web Push
// notifications: it reads the payload the inbox sends ({id, kind, title, body?, url?, at}), shows it, and opens
// its url on click (focusing an open tab of the same page when there is one). Served as-is by GET /push/sw.js.
//
// A user never sees one notification twice. The edge sends a notification's push again only when a request to the
// push service ended without an answer (the service may have taken it), and then with the same id; so this worker
// shows each id once: it keeps the ids it has shown (the most recent SEEN_MAX, in Cache Storage, which outlives
// the worker between pushes) and, for a copy of one already shown, shows nothing new. If that notification is
// still on screen, the copy replaces it under the same tag without a second alert (browsers expect every push to
// show something); if the user already dismissed or opened it, it stays gone.
export const SERVICE_WORKER_JS = `// Pulsecast push service worker
const SEEN = "pulsecast-push-seen";
const SEEN_MAX = 500;
const seenKey = (id) => new Request(self.registration.scope + "seen/" + encodeURIComponent(id));

// true for the first copy of a notification id; records it (and counts later copies)
async function firstCopy(id) {
  const cache = await caches.open(SEEN);
  const key = seenKey(id);
  const known = await cache.match(key);
  if (known) {
    const record = await known.json().catch(() => ({}));
    await cache.put(key, new Response(JSON.stringify({ shownAt: record.shownAt, copies: (record.copies || 0) + 1 })));
    return false;
  }
  await cache.put(key, new Response(JSON.stringify({ shownAt: Date.now(), copies: 0 })));
  const keys = await cache.keys(); // oldest first
  for (const old of keys.slice(0, Math.max(0, keys.length - SEEN_MAX))) await cache.delete(old);
  return true;
}

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch { data = { title: event.data ? event.data.text() : "Notification" }; }
  const title = typeof data.title === "string" && data.title ? data.title : "Notification";
  const id = typeof data.id === "string" ? data.id : undefined;
  const options = {
    body: typeof data.body === "string" ? data.body : undefined,
    tag: id,
    renotify: false,
    data: { url: typeof data.url === "string" ? data.url : undefined, id, kind: data.kind },
    timestamp: typeof data.at === "number" ? data.at : Date.now(),
  };
  event.waitUntil((async () => {
    if (id !== undefined && !(await firstCopy(id).catch(() => true))) {
      const onScreen = await self.registration.getNotifications({ tag: id });
      if (onScreen.length > 0) await self.registration.showNotification(title, options);
      return;
    }
    await self.registration.showNotification(title, options);
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data && event.notification.data.url;
  if (!url) return;
  event.waitUntil((async () => {
    const tabs = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const tab of tabs) if (tab.url === url && "focus" in tab) return tab.focus();
    return self.clients.openWindow(url);
  })());
});
`;
