// Chat, presence and reactions of one room, bound to the elements the watch and studio pages share. The
// RoomClient keeps the state (ordered messages, presence, resume); this only renders it. Moderators get
// delete on messages and kick/ban on people.
import type { ChatMessage, PresenceEntry, RoomClient } from "../../shared/client/room-client.ts";
import { $, clearAlert, h, showAlert } from "./dom.ts";

export const REACTIONS = ["👍", "❤️", "😂", "🔥", "👏"] as const;

const MODERATORS = new Set(["moderator", "broadcaster"]);

/** Binds the chat elements to `room`; returns the function that unbinds them (the studio switches rooms). */
export function mountChat(room: RoomClient): () => void {
  const dom = new AbortController();
  const signal = dom.signal;
  const offs: (() => void)[] = [];
  const on: RoomClient["on"] = (event, listener) => {
    const off = room.on(event, listener);
    offs.push(off);
    return off;
  };
  const list = $<HTMLOListElement>("messages");
  const form = $<HTMLFormElement>("chat-form");
  const input = $<HTMLInputElement>("chat-input");
  const older = $<HTMLButtonElement>("load-older");
  const count = $("presence-count");
  const people = $("people-list");
  const status = $("conn-status");
  const reactions = $("reactions");
  const totals = new Map<string, number>();
  const canModerate = () => MODERATORS.has(room.me?.role ?? "");

  const messageItem = (m: ChatMessage) => {
    const when = new Date(m.at);
    const li = h(
      "li",
      { "data-id": m.id, class: m.deleted ? "deleted" : m.userId === room.me?.userId ? "own" : "" },
      h("span", { class: "author" }, m.name ?? m.userId),
      " ",
      h("time", { datetime: when.toISOString(), class: "muted" }, when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })),
      h("p", { class: "text" }, m.deleted ? "(message deleted)" : m.text),
    );
    if (canModerate() && !m.deleted) {
      const del = h("button", { type: "button", class: "link danger", "aria-label": `Delete message from ${m.name ?? m.userId}` }, "Delete");
      del.addEventListener("click", () => room.deleteMessage(m.id), { signal });
      li.append(del);
    }
    return li;
  };

  const renderMessages = (messages: readonly ChatMessage[]) => {
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    list.replaceChildren(...messages.map(messageItem));
    older.hidden = (messages[0]?.id ?? 1) <= 1;
    if (nearBottom) list.scrollTop = list.scrollHeight;
  };

  const personItem = (p: PresenceEntry) => {
    const li = h("li", { "data-user": p.userId }, h("span", {}, p.name ?? p.userId), p.connections > 1 ? h("span", { class: "muted" }, ` (${p.connections} tabs)`) : null, p.state.typing ? h("span", { class: "muted" }, " typing…") : null);
    if (canModerate() && p.userId !== room.me?.userId) {
      const kick = h("button", { type: "button", class: "link", "aria-label": `Remove ${p.name ?? p.userId} from the room` }, "Kick");
      const ban = h("button", { type: "button", class: "link danger", "aria-label": `Ban ${p.name ?? p.userId}` }, "Ban");
      kick.addEventListener("click", () => room.kick(p.userId), { signal });
      ban.addEventListener("click", () => room.ban(p.userId), { signal });
      li.append(" ", kick, " ", ban);
    }
    return li;
  };
  const renderPresence = () => {
    count.textContent = String(room.presenceCount);
    people.replaceChildren(...[...room.presence.values()].map(personItem));
  };

  const reactionButtons = REACTIONS.map((emoji) => {
    const n = h("span", { class: "n" }, "0");
    const b = h("button", { type: "button", class: "reaction", "data-emoji": emoji, "aria-label": `React ${emoji}, 0 so far` }, h("span", { "aria-hidden": "true" }, emoji), " ", n);
    b.addEventListener("click", () => room.react(emoji), { signal });
    return { emoji, b, n };
  });
  reactions.replaceChildren(...reactionButtons.map((r) => r.b));

  on("messages", renderMessages);
  on("presence", renderPresence);
  on("welcome", () => (renderPresence(), renderMessages(room.messages)));
  on("reactions", ({ counts }) => {
    for (const [emoji, n] of Object.entries(counts)) totals.set(emoji, (totals.get(emoji) ?? 0) + n);
    for (const r of reactionButtons) {
      const total = totals.get(r.emoji) ?? 0;
      r.n.textContent = String(total);
      r.b.setAttribute("aria-label", `React ${r.emoji}, ${total} so far`);
    }
  });
  on("status", (s) => {
    status.textContent = s.state === "open" ? "" : s.state === "reconnecting" ? "Connection lost. Reconnecting…" : s.state === "connecting" ? "Connecting…" : s.state === "closed" ? "Disconnected." : "";
    form.querySelector("button")!.disabled = s.state === "closed";
  });
  on("gap", (g) => (g.filled ? clearAlert("gap") : showAlert("Loading the messages you missed…", { key: "gap", kind: "info" })));
  on("error", (e) => {
    if (e.code === "forbidden" && e.ref === "send") return showAlert("Viewers cannot chat in this room.", { key: "chat" });
    if (e.code === "rate_limited") return showAlert("You are sending too fast; wait a moment.", { key: "chat" });
    if (e.ref) return showAlert(e.message, { key: "chat" });
    if (e.fatal || e.code === "kicked") showAlert(e.message, { key: "room" });
  });

  let typingTimer: ReturnType<typeof setTimeout> | null = null;
  input.addEventListener(
    "input",
    () => {
      if (!typingTimer) room.setPresence({ typing: true });
      if (typingTimer) clearTimeout(typingTimer);
      typingTimer = setTimeout(() => ((typingTimer = null), room.setPresence({})), 2000);
    },
    { signal },
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    if (typingTimer) (clearTimeout(typingTimer), (typingTimer = null), room.setPresence({}));
    room.send(text).catch((e: Error) => showAlert(`Your message was not sent: ${e.message}`, { key: "chat" }));
  }, { signal });
  older.addEventListener("click", () => void room.loadOlder().catch((e: Error) => showAlert(e.message, { key: "history" })), { signal });
  return () => {
    dom.abort();
    for (const off of offs) off();
    if (typingTimer) clearTimeout(typingTimer);
  };
}
