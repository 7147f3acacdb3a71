// The service worker a page registers (`navigator.serviceWorker.register("/push/sw.js")`) to show Web Push
// notifications: it reads the payload the inbox sends ({id, kind, title, body?, url?, at}), shows it, and opens
// its url on click (focusing an open tab of the same page when there is one). Served as-is by GET /push/sw.js.
export const SERVICE_WORKER_JS = `// Pulsecast push service worker
self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch { data = { title: event.data ? event.data.text() : "Notification" }; }
  const title = typeof data.title === "string" && data.title ? data.title : "Notification";
  event.waitUntil(self.registration.showNotification(title, {
    body: typeof data.body === "string" ? data.body : undefined,
    tag: typeof data.id === "string" ? data.id : undefined,
    data: { url: typeof data.url === "string" ? data.url : undefined, id: data.id, kind: data.kind },
    timestamp: typeof data.at === "number" ? data.at : Date.now(),
  }));
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
