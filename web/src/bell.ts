// The inbox bell every page shows: unread count on the button, the latest notifications in a panel, mark all
// read. Keyboard: the button toggles the panel, Escape closes it and returns focus to the button.
import { type InboxClient, type InboxNotification } from "../../shared/client/index.ts";
import { $, h } from "./dom.ts";

export function mountBell(inbox: InboxClient): void {
  const root = $("bell");
  const count = h("span", { class: "bell-count", "aria-hidden": "true" }, "0");
  const button = h("button", { type: "button", id: "bell-button", class: "bell", "aria-expanded": "false", "aria-controls": "bell-panel", "aria-label": "Notifications" }, h("span", { "aria-hidden": "true" }, "🔔"), count);
  const list = h("ul", { class: "bell-list" });
  const markAll = h("button", { type: "button", class: "link" }, "Mark all read");
  const panel = h("div", { id: "bell-panel", class: "bell-panel", role: "region", "aria-label": "Notifications", hidden: true }, h("div", { class: "bell-head" }, h("strong", {}, "Notifications"), markAll), list);
  root.replaceChildren(button, panel);

  const render = () => {
    const n = inbox.unread;
    count.textContent = n > 99 ? "99+" : String(n);
    count.hidden = n === 0;
    button.setAttribute("aria-label", `Notifications, ${n} unread`);
    list.replaceChildren(
      ...(inbox.notifications.length === 0 ? [h("li", { class: "muted" }, "Nothing new.")] : inbox.notifications.slice(0, 20).map(item)),
    );
  };
  const item = (n: InboxNotification) =>
    h("li", { class: n.read ? "read" : "unread" }, n.url ? h("a", { href: n.url }, n.title) : h("span", {}, n.title), n.body ? h("p", { class: "muted" }, n.body) : null);
  const toggle = (open: boolean) => {
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
  };
  button.addEventListener("click", () => toggle(Boolean(panel.hidden)));
  panel.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    toggle(false);
    button.focus();
  });
  markAll.addEventListener("click", () => void inbox.markAllRead().catch(() => undefined));
  inbox.on("unread", render);
  inbox.on("notifications", render);
  render();
}
