// Go-live page (`/studio`): create a stream or pick one of yours (streams API), copy the OBS server and key,
// watch it go from "waiting for signal" to live with its renditions, see viewers and chat with moderation,
// rotate the key.
import { RoomClient, type StreamInfo } from "../../shared/client/room-client.ts";
import { pageToken } from "./auth.ts";
import { bootPage, reportUncaught } from "./boot.ts";
import { mountChat } from "./chat.ts";
import { $, h, showAlert } from "./dom.ts";
import { Player } from "./player.ts";

/** The Streams API's owner view (`POST /streams`, `GET /streams[/:id]`, `POST /streams/:id/key`), as far as this page reads it. */
interface StreamResource {
  id: string;
  roomId: string;
  title: string | null;
  status: "idle" | "live" | "ended" | "disabled";
  /** what OBS takes: Settings > Stream > Custom, Server and Stream Key */
  obs: { server: string; key: string };
  playback: { policy: "public" | "signed"; playbackId: string; url?: string };
  renditions: Rendition[];
  viewers: number | null;
}
interface Rendition {
  name: string;
  height?: number;
}

const renditionText = (list: Rendition[]) => list.map((r) => r.name || `${r.height}p`).join(", ") || "—";

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const token = await pageToken("connect");
  const res = await fetch(path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const json = (await res.json().catch(() => ({}))) as T & { error?: { code?: string; message?: string } };
  if (res.status === 404 && path.startsWith("/streams") && json.error?.code !== "stream_not_found") throw new Error(`This edge has no Streams API (${method} ${path} answered 404).`);
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
  $("stream-panel").hidden = false;
  $("studio-chat").hidden = false;
  $("stream-heading").textContent = stream.title ?? stream.id;
  $("rtmp-url").textContent = stream.obs.server;
  $("stream-key").textContent = stream.obs.key;
  $("playback-policy").textContent = stream.playback.policy === "signed" ? "Signed (each viewer gets a token)" : "Public";
  $("renditions").textContent = renditionText(stream.renditions);
  const link = $<HTMLAnchorElement>("watch-link");
  link.href = `/watch/${encodeURIComponent(stream.id)}`;
  link.textContent = link.href;
  if (stream.status === "disabled") setStatus("disabled", "Disabled: the key is refused and nothing plays.");
  else setStatus("waiting", "Waiting for signal…");
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
      // Joined while live: the room's state has no renditions, the stream's resource has.
      if ($("renditions").textContent === "—") void refresh(stream.id);
      return;
    }
    player.setLive(false);
    setStatus("ended", s.vodUrl ? "Ended. The recording is ready." : "Ended.");
  };
  room.on("stream", apply);
  room.on("welcome", () => apply(room.stream));
  room.on("event", (e) => {
    const data = e.data as { renditions?: Rendition[] };
    // stream.degraded lists what is left after the node shed rungs it could not encode in real time
    if ((e.type === "stream.live" || e.type === "stream.degraded") && data.renditions) $("renditions").textContent = renditionText(data.renditions as Rendition[]);
  });
  room.on("presence", () => ($("viewers").textContent = String(Math.max(0, room.presenceCount - 1))));
  room.connect().catch((e: Error) => showAlert(e.message, { key: "room" }));
  current = { stream, room, player, unmount };
  (globalThis as { pulsecast?: unknown }).pulsecast = { room, player, stream };
}

/** Renditions and policy from the stream's resource (the room's state does not carry them). */
async function refresh(id: string): Promise<void> {
  try {
    const s = await api<StreamResource>("GET", `/streams/${encodeURIComponent(id)}`);
    if (current?.stream.id !== id) return;
    current.stream = s;
    $("renditions").textContent = renditionText(s.renditions);
  } catch (e) {
    showAlert(`Could not load the stream: ${(e as Error).message}`, { key: "stream" });
  }
}

async function main(): Promise<void> {
  reportUncaught();
  const session = await bootPage();
  if (!session) return;
  const pick = $<HTMLSelectElement>("stream-pick");
  // The caller's own streams, newest first (GET /streams lists only the caller's).
  api<{ streams: StreamResource[] }>("GET", "/streams?limit=50").then(
    ({ streams }) => pick.append(...streams.map((s) => h("option", { value: s.id }, `${s.title ?? s.id} (${s.status})`))),
    (e: Error) => showAlert(`Could not list your streams: ${e.message}`, { key: "stream" }),
  );
  pick.addEventListener("change", async () => {
    if (!pick.value) return;
    try {
      show(await api<StreamResource>("GET", `/streams/${encodeURIComponent(pick.value)}`));
    } catch (e) {
      showAlert(`Could not load the stream: ${(e as Error).message}`, { key: "stream" });
    }
  });
  $<HTMLFormElement>("create-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const title = $<HTMLInputElement>("stream-title").value.trim();
    try {
      const s = await api<StreamResource>("POST", "/streams", title ? { title } : {});
      pick.append(h("option", { value: s.id }, `${s.title ?? s.id} (${s.status})`));
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
      const s = await api<StreamResource>("POST", `/streams/${encodeURIComponent(current.stream.id)}/key`);
      $("stream-key").textContent = s.obs.key;
      current.stream = s;
      // Media nodes re-check live keys every few seconds: a publisher on the old key is cut.
      showAlert("New stream key made; the old one no longer works and a broadcast using it is cut.", { key: "copy", kind: "info" });
    } catch (e) {
      showAlert(`Could not rotate the key: ${(e as Error).message}`, { key: "stream" });
    }
  });
}

void main();
