// Watch page (`/watch/<stream or video id>`): the player, chat with history and resume, who is here, reactions,
// and the stream's status as it changes (starting → live → ended → recording ready) without a reload. A video
// (upload) gets its processing status and trick-play thumbnails on the seek bar.
// Pages import the client's modules one by one (not its index) so the watch page does not carry the uploader.
import { RoomClient, type StreamInfo } from "../../shared/client/room-client.ts";
import { pageToken } from "./auth.ts";
import { bootPage, getJson, reportUncaught } from "./boot.ts";
import { mountChat } from "./chat.ts";
import { $, clearAlert, formatTime, showAlert } from "./dom.ts";
import { Player } from "./player.ts";
import { cueAt, parseStoryboard, type StoryboardCue } from "./storyboard.ts";

/** The Streams API's answer (GET /streams/:id; a viewer gets its public fields), as far as this page reads it. */
interface StreamResource {
  id: string;
  roomId: string;
  status: "idle" | "live" | "ended" | "disabled";
  /** `url` only for a public stream: a signed one plays with the viewer token the room mints for each viewer */
  playback: { policy: "public" | "signed"; url?: string };
}
/** The videos API's answer (`GET /videos/:id` → `{video}`), as far as this page reads it. */
interface VideoResource {
  id: string;
  status: "uploading" | "queued" | "processing" | "playable" | "ready" | "failed";
  progress?: { stage: string; percent: number } | null;
  failure?: { stage?: string; reason: string } | null;
  /** set once `playable` */
  playbackUrl?: string;
  posterUrl?: string;
  /** WebVTT with `sprite.jpg#xywh=x,y,w,h` cues */
  storyboardUrl?: string;
}
const getVideo = async (id: string) => (await getJson<{ video: VideoResource }>(`/videos/${encodeURIComponent(id)}`))?.video ?? null;

const statusText: Record<string, string> = {
  none: "Nothing is playing in this room yet.",
  starting: "Waiting for the broadcast to start…",
  live: "Live",
  ended: "The broadcast has ended.",
  recording: "The broadcast has ended. The recording is ready.",
};

function setStatus(kind: keyof typeof statusText | string, text = statusText[kind] ?? kind): void {
  const el = $("stream-status");
  el.dataset.status = kind;
  el.textContent = text;
}

async function main(): Promise<void> {
  reportUncaught();
  const session = await bootPage();
  if (!session) return;
  const id = decodeURIComponent(location.pathname.split("/")[2] ?? "");
  if (!id) return showAlert("No stream or video id in the address.");
  $("title").textContent = id;

  const video = $<HTMLVideoElement>("video");
  const player = new Player(video, {
    onError: (message) => showAlert(message, { key: "player" }),
    onPlaying: () => clearAlert("player"),
  });

  // Which room: the stream's or the video's when those APIs answer; otherwise a stream's room is its id.
  const stream = await getJson<StreamResource>(`/streams/${encodeURIComponent(id)}`).catch(() => null);
  const vod = stream ? null : await getVideo(id).catch(() => null);
  // A video's room (its comments) is named after it.
  const roomId = stream?.roomId ?? id;

  const room = new RoomClient({ baseUrl: location.origin, roomId, token: pageToken });
  mountChat(room);
  (globalThis as { pulsecast?: unknown }).pulsecast = { room, player, inbox: session.inbox };

  if (vod) void followVideo(vod, player, session.inbox);
  else {
    const applyStream = (s: StreamInfo | undefined) => showStream(s, player, stream);
    room.on("stream", applyStream);
    room.on("welcome", () => applyStream(room.stream));
  }
  room.connect().catch((e: Error) => showAlert(e.message, { key: "room" }));
}

/**
 * The room's stream state, as the room gives it to this viewer: for a stream made through the Streams API the
 * URLs go through this edge's `/play` (by id when public, with a token minted for this viewer when signed), so
 * the page plays what the welcome and the event frames carry and never builds a URL itself.
 */
function showStream(s: StreamInfo | undefined, player: Player, api: StreamResource | null): void {
  const recording = $<HTMLButtonElement>("watch-recording");
  recording.hidden = true;
  if (!s) return setStatus("none");
  if (s.status === "starting") return setStatus("starting");
  if (s.status === "live") {
    setStatus("live");
    // A room that could not mint this viewer a URL sends the state without one; a public stream's own URL plays.
    const url = s.playbackUrl ?? api?.playback.url;
    if (url) void player.load(url, true, { lowLatency: s.latency === "low" && url === s.playbackUrl });
    else showAlert("This stream is live but no playback address was given to you; reload the page to try again.", { key: "player" });
    return;
  }
  // Ended: the player plays out what it has (the playlist now ends); the recording is offered once ready.
  player.setLive(false);
  if (!s.vodUrl) return setStatus("ended");
  setStatus("recording");
  recording.hidden = false;
  recording.onclick = () => {
    recording.hidden = true;
    void player.load(s.vodUrl!, false);
  };
}

/** A video: show processing progress until it is playable, then play it (with storyboard thumbnails once ready). */
async function followVideo(first: VideoResource, player: Player, inbox: import("../../shared/client/inbox-client.ts").InboxClient): Promise<void> {
  let v = first;
  const playing = () => v.status === "playable" || v.status === "ready";
  inbox.on("progress", (p) => {
    if (p.mediaId === v.id && !playing()) setStatus("processing", `Processing (${p.stage}): ${Math.round(p.percent)}%`);
  });
  while (!playing() && v.status !== "failed") {
    setStatus("processing", v.progress ? `Processing (${v.progress.stage}): ${Math.round(v.progress.percent)}%` : v.status === "uploading" ? "Still uploading…" : "Processing…");
    await new Promise((r) => setTimeout(r, 2000));
    v = (await getVideo(v.id)) ?? v;
  }
  if (v.status === "failed") return setStatus("failed", `This video could not be processed${v.failure ? `: ${v.failure.reason}` : "."}`);
  if (!v.playbackUrl) return showAlert("This video has no playback address yet.");
  if (v.posterUrl) player.video.poster = v.posterUrl;
  await player.load(v.playbackUrl, false);
  // Playable while the rest is encoded: the storyboard comes with `ready`.
  while (v.status === "playable") {
    setStatus("processing", "Playable while it is still being processed…");
    await new Promise((r) => setTimeout(r, 2000));
    v = (await getVideo(v.id)) ?? v;
  }
  setStatus(v.status, v.status === "ready" ? "" : `This video could not be processed${v.failure ? `: ${v.failure.reason}` : "."}`);
  if (v.storyboardUrl) await mountStoryboard(player.video, v.storyboardUrl);
}

/** A seek bar that previews the frame under the pointer (or the keyboard's position) from the storyboard. */
async function mountStoryboard(video: HTMLVideoElement, vttUrl: string): Promise<void> {
  const res = await fetch(vttUrl).catch(() => null);
  if (!res?.ok) return;
  const cues: StoryboardCue[] = parseStoryboard(await res.text(), res.url || vttUrl);
  if (cues.length === 0) return;
  const bar = $("scrub");
  const seek = $<HTMLInputElement>("seek");
  const thumb = $("thumb");
  const img = $("thumb-img");
  const label = $("thumb-time");
  bar.hidden = false;
  const sync = () => {
    seek.max = String(video.duration || cues.at(-1)!.end);
    if (document.activeElement !== seek) seek.value = String(video.currentTime);
  };
  video.addEventListener("timeupdate", sync);
  video.addEventListener("durationchange", sync);
  const show = (t: number, x: number) => {
    const cue = cueAt(cues, t);
    if (!cue) return;
    thumb.hidden = false;
    thumb.style.left = `${Math.max(0, x - cue.w / 2)}px`;
    img.style.width = `${cue.w}px`;
    img.style.height = `${cue.h}px`;
    img.style.backgroundImage = `url("${cue.url}")`;
    img.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
    label.textContent = formatTime(t);
  };
  seek.addEventListener("pointermove", (ev) => {
    const r = seek.getBoundingClientRect();
    const frac = Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
    show(frac * Number(seek.max), ev.clientX - r.left);
  });
  seek.addEventListener("pointerleave", () => (thumb.hidden = true));
  seek.addEventListener("input", () => {
    const r = seek.getBoundingClientRect();
    show(Number(seek.value), (Number(seek.value) / Number(seek.max || 1)) * r.width);
  });
  seek.addEventListener("change", () => ((video.currentTime = Number(seek.value)), (thumb.hidden = true)));
  seek.addEventListener("blur", () => (thumb.hidden = true));
}

void main();
