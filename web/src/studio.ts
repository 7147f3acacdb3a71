// Go-live page (`/studio`): create a stream or pick one of yours (streams API), copy the OBS server and key,
// watch it go from "waiting for signal" to live with its renditions, see viewers and chat with moderation,
// rotate the key.
import { RoomClient, type StreamInfo } from "../../shared/client/room-client.ts";
import { pageToken } from "./auth.ts";
import { bootPage, getJson, reportUncaught } from "./boot.ts";
import { mountChat } from "./chat.ts";
import { $, h, showAlert } from "./dom.ts";
import { Player } from "./player.ts";

/** The streams API's answer (`POST /streams`, `GET /streams/:id`), as far as this page reads it. */
interface StreamResource {
  id: string;
  roomId: string;
  title?: string;
  rtmp: { url: string; streamKey: string };
  playback?: { policy?: string; url?: string };
}

const MINE = "pulsecast.streams";
const remembered = (): string[] => JSON.parse(localStorage.getItem(MINE) ?? "[]") as string[];
const remember = (id: string) => localStorage.setItem(MINE, JSON.stringify([id, ...remembered().filter((x) => x !== id)].slice(0, 20)));

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const token = await pageToken("connect");
  const res = await fetch(path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const json = (await res.json().catch(() => ({}))) as T & { error?: { code?: string; message?: string } };
  if (res.status === 404 && json.error?.code === "not_found" && path === "/streams") throw new Error("This edge has no streams API (POST /streams answered 404).");
  if (!res.ok) throw new Error(json.error?.message ?? `HTTP ${res.status}`);
  return json;
}

let previewPlayer: Player | null = null;
let current: { stream: StreamResource; room: RoomClient; player: Player; unmount(): void } | null = null;

function setStatus(kind: string, text: string): void {
  const el = $("studio-status");
  el.dataset.status = kind;
  el.textContent = text;
}

function show(stream: StreamResource): void {
  current?.unmount();
  current?.room.close();
  current?.player.destroy();
  remember(stream.id);
  $("stream-panel").hidden = false;
  $("studio-chat").hidden = false;
  $("stream-heading").textContent = stream.title ?? stream.id;
  $("rtmp-url").textContent = stream.rtmp.url;
  $("stream-key").textContent = stream.rtmp.streamKey;
  const link = $<HTMLAnchorElement>("watch-link");
  link.href = `/watch/${encodeURIComponent(stream.id)}`;
  link.textContent = link.href;
  setStatus("waiting", "Waiting for signal…");
  // One player for the page (it binds the video and its controls once); switching streams reloads it.
  previewPlayer ??= new Player($<HTMLVideoElement>("video"), { onError: (m) => showAlert(m, { key: "player" }) });
  const player = previewPlayer;
  const room = new RoomClient({ baseUrl: location.origin, roomId: stream.roomId, token: pageToken });
  const unmount = mountChat(room);
  const apply = (s: StreamInfo | undefined) => {
    if (!s || s.status === "starting") return setStatus("waiting", s ? "Signal received, starting…" : "Waiting for signal…");
    if (s.status === "live") {
      setStatus("live", "Live");
      if (s.playbackUrl) void player.load(s.playbackUrl, true);
      return;
    }
    player.setLive(false);
    setStatus("ended", s.vodUrl ? "Ended. The recording is ready." : "Ended.");
  };
  room.on("stream", apply);
  room.on("welcome", () => apply(room.stream));
  room.on("event", (e) => {
    const data = e.data as { renditions?: { name?: string; height?: number }[] };
    if (e.type === "stream.live" && data.renditions) $("renditions").textContent = data.renditions.map((r) => r.name ?? `${r.height}p`).join(", ") || "—";
  });
  room.on("presence", () => ($("viewers").textContent = String(Math.max(0, room.presenceCount - 1))));
  room.connect().catch((e: Error) => showAlert(e.message, { key: "room" }));
  current = { stream, room, player, unmount };
  (globalThis as { pulsecast?: unknown }).pulsecast = { room, player, stream };
}

async function main(): Promise<void> {
  reportUncaught();
  const session = await bootPage();
  if (!session) return;
  const pick = $<HTMLSelectElement>("stream-pick");
  for (const id of remembered()) pick.append(h("option", { value: id }, id));
  pick.addEventListener("change", async () => {
    if (!pick.value) return;
    try {
      const s = await getJson<StreamResource>(`/streams/${encodeURIComponent(pick.value)}`);
      if (!s) return showAlert(`Stream ${pick.value} no longer exists.`, { key: "stream" });
      show(s);
    } catch (e) {
      showAlert(`Could not load the stream: ${(e as Error).message}`, { key: "stream" });
    }
  });
  $<HTMLFormElement>("create-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const title = $<HTMLInputElement>("stream-title").value.trim();
    try {
      const s = await api<StreamResource>("POST", "/streams", title ? { title } : {});
      pick.append(h("option", { value: s.id }, s.title ?? s.id));
      show(s);
    } catch (e) {
      showAlert(`Could not create a stream: ${(e as Error).message}`, { key: "stream" });
    }
  });
  for (const b of document.querySelectorAll<HTMLButtonElement>("button.copy")) {
    b.addEventListener("click", async () => {
      const text = $(b.dataset.copy!).textContent ?? "";
      await navigator.clipboard.writeText(text).then(
        () => showAlert(`${b.textContent?.replace("Copy ", "")} copied.`, { key: "copy", kind: "info" }),
        () => showAlert("Copying is blocked here; select the text and copy it.", { key: "copy" }),
      );
    });
  }
  $("rotate-key").addEventListener("click", async () => {
    if (!current) return;
    try {
      const s = await api<StreamResource>("POST", `/streams/${encodeURIComponent(current.stream.id)}/rotate-key`);
      $("stream-key").textContent = s.rtmp.streamKey;
      current.stream = s;
      showAlert("New stream key made; the old one no longer works.", { key: "copy", kind: "info" });
    } catch (e) {
      showAlert(`Could not rotate the key: ${(e as Error).message}`, { key: "stream" });
    }
  });
}

void main();
