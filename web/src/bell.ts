// The inbox bell every page shows: unread count on the button, the latest notifications in a panel, mark all
// read. Keyboard: the button toggles the panel, Escape closes it and returns focus to the button.
import type { InboxClient, InboxNotification } from "../../shared/client/inbox-client.ts";
import { $, h } from "./dom.ts";

/** A bell drawn as SVG (an emoji needs a font the device may lack). */
function bellIcon(): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "20");
  svg.setAttribute("height", "20");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z");
  svg.append(path);
  return svg;
}

export function mountBell(inbox: InboxClient): void {
  const root = $("bell");
  const count = h("span", { class: "bell-count", "aria-hidden": "true" }, "0");
  const button = h("button", { type: "button", id: "bell-button", class: "bell", "aria-expanded": "false", "aria-controls": "bell-panel", "aria-label": "Notifications" }, bellIcon(), count);
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
