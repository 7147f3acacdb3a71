// Call page (`/call/<room>`): a small video call in a room. Before joining: a camera preview with camera and
// microphone pickers. In the call: one tile per peer (and one per shared screen), up to the room's mesh limit,
// with mute, camera off, screen share and leave. A dropped connection rejoins on its own; the tiles come back as
// the peers reconnect. Viewers (role `viewer`) may open the room but not join its call: the page says so.
import { CallClient, type CallPeer, fetchIceServers, type RemotePeer } from "../../shared/client/call-client.ts";
import { RoomClient } from "../../shared/client/room-client.ts";
import { pageToken, tokenUser } from "./auth.ts";
import { bootPage, reportUncaught } from "./boot.ts";
import { $, clearAlert, h, showAlert } from "./dom.ts";

/** What the camera is asked for: enough for a tile, light enough for a mesh of six on a laptop. */
const CAMERA = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };

type Status = "loading" | "lobby" | "joining" | "in-call" | "reconnecting" | "full" | "left" | "viewer" | "error";

function setStatus(kind: Status, text: string): void {
  const el = $("call-status");
  el.dataset.status = kind;
  el.textContent = text;
}

function roomFromPath(): string | null {
  const m = /^\/call\/([^/]+)\/?$/.exec(location.pathname);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return null;
  }
}

const peerName = (p: CallPeer) => p.name ?? p.userId;

/** Words for a getUserMedia failure. */
function deviceProblem(error: unknown): string {
  const name = (error as { name?: string }).name;
  if (name === "NotAllowedError") return "The browser was not allowed to use your camera or microphone.";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "No camera or microphone was found.";
  if (name === "NotReadableError") return "Your camera or microphone is in use by another program.";
  return `Your camera or microphone could not be opened: ${(error as Error).message}`;
}

async function main(): Promise<void> {
  reportUncaught();
  const session = await bootPage();
  if (!session) return;
  const roomId = roomFromPath();
  if (!roomId) {
    setStatus("error", "This address names no room.");
    return showAlert("Open a call as /call/<room>.");
  }
  $("call-title").textContent = `Call: ${roomId}`;
  document.title = `${roomId} · Call · Pulsecast`;

  const room = new RoomClient({ baseUrl: location.origin, roomId, token: pageToken });
  const call = new CallClient({ room, iceServers: () => fetchIceServers(location.origin, () => pageToken("connect")) });
  (globalThis as { pulsecast?: unknown }).pulsecast = { room, call };

  let audio: MediaStreamTrack | null = null;
  let camera: MediaStreamTrack | null = null;
  let screen: MediaStreamTrack | null = null;
  let maxPeers = 6;
  const lobby = $("lobby");
  const stage = $("stage");
  const left = $("left");
  const preview = $<HTMLVideoElement>("preview");
  const cameraSelect = $<HTMLSelectElement>("camera-select");
  const micSelect = $<HTMLSelectElement>("mic-select");
  const joinButton = $<HTMLButtonElement>("join");
  const muteButton = $<HTMLButtonElement>("mute");
  const cameraButton = $<HTMLButtonElement>("camera");
  const screenButton = $<HTMLButtonElement>("screen");

  // ---- devices ------------------------------------------------------------------------------------------

  const fillDevices = async () => {
    const devices = await navigator.mediaDevices.enumerateDevices().catch(() => [] as MediaDeviceInfo[]);
    const fill = (select: HTMLSelectElement, kind: MediaDeviceKind, current: MediaStreamTrack | null, fallback: string) => {
      const chosen = current?.getSettings().deviceId ?? select.value;
      const list = devices.filter((d) => d.kind === kind && d.deviceId);
      select.replaceChildren(...(list.length ? list.map((d, i) => h("option", { value: d.deviceId }, d.label || `${fallback} ${i + 1}`)) : [h("option", { value: "" }, `No ${fallback.toLowerCase()} found`)]));
      if (chosen && list.some((d) => d.deviceId === chosen)) select.value = chosen;
    };
    fill(cameraSelect, "videoinput", camera, "Camera");
    fill(micSelect, "audioinput", audio, "Microphone");
  };

  /** Opens the chosen camera (or none); the old track is stopped. */
  const openCamera = async (deviceId?: string): Promise<void> => {
    const track = (await navigator.mediaDevices.getUserMedia({ video: { ...CAMERA, ...(deviceId ? { deviceId: { exact: deviceId } } : {}) } })).getVideoTracks()[0] ?? null;
    camera?.stop();
    camera = track;
    showPreview();
  };
  const openMic = async (deviceId?: string): Promise<void> => {
    const track = (await navigator.mediaDevices.getUserMedia({ audio: deviceId ? { deviceId: { exact: deviceId } } : true })).getAudioTracks()[0] ?? null;
    const muted = audio ? !audio.enabled : false;
    audio?.stop();
    audio = track;
    if (audio) audio.enabled = !muted;
  };
  const showPreview = () => {
    preview.srcObject = camera ? new MediaStream([camera]) : null;
    renderSelf();
  };
  const openDevices = async (): Promise<void> => {
    const note = $("lobby-note");
    note.textContent = "";
    // Together first, so the browser asks once; then whatever can be had alone.
    try {
      const both = await navigator.mediaDevices.getUserMedia({ audio: true, video: CAMERA });
      audio = both.getAudioTracks()[0] ?? null;
      camera = both.getVideoTracks()[0] ?? null;
    } catch (error) {
      await openCamera().catch(() => undefined);
      await openMic().catch(() => undefined);
      if (!audio && !camera) note.textContent = `${deviceProblem(error)} You can still join and see and hear the others.`;
      else if (!camera) note.textContent = "No camera: you will join with sound only.";
      else if (!audio) note.textContent = "No microphone: you will join with video only.";
    }
    showPreview();
    await fillDevices();
  };
  navigator.mediaDevices?.addEventListener?.("devicechange", () => void fillDevices());

  cameraSelect.addEventListener("change", async () => {
    try {
      await openCamera(cameraSelect.value || undefined);
      if (call.state === "in-call") await call.setTrack("camera", cameraOn ? camera : null);
    } catch (error) {
      showAlert(deviceProblem(error), { key: "device" });
    }
  });
  micSelect.addEventListener("change", async () => {
    try {
      await openMic(micSelect.value || undefined);
      if (call.state === "in-call") await call.setTrack("audio", audio);
    } catch (error) {
      showAlert(deviceProblem(error), { key: "device" });
    }
  });

  // ---- tiles --------------------------------------------------------------------------------------------

  const tiles = $("tiles");
  let cameraOn = true;
  // Each tile keeps its <video> and redraws only the overlay on top of it, so playback is never interrupted.
  const selfVideo = h("video", { autoplay: true, playsinline: true, muted: true, "aria-label": "Your camera" });
  selfVideo.muted = true;
  const selfOverlay = h("div", { class: "overlay" });
  const selfTile = h("li", { class: "tile self", "data-peer": "self" }, selfVideo, selfOverlay);
  const remoteTiles = new Map<string, { li: HTMLLIElement; video: HTMLVideoElement; overlay: HTMLDivElement; screenLi: HTMLLIElement | null }>();
  const present = (...nodes: (HTMLElement | null)[]) => nodes.filter((n): n is HTMLElement => n !== null);

  const flags = (media: { audio: boolean; video: boolean; screen: boolean }) =>
    h("span", { class: "flags" }, !media.audio ? h("span", { class: "flag" }, "Muted") : null, media.screen ? h("span", { class: "flag" }, "Sharing screen") : null);
  const offCover = (name: string) => h("span", { class: "off", "aria-hidden": "true" }, name.slice(0, 1).toUpperCase());

  function renderSelf(): void {
    const me = tokenUser(session!.token);
    const media = call.state === "in-call" ? call.media : { audio: Boolean(audio?.enabled), video: Boolean(camera && cameraOn), screen: Boolean(screen) };
    const track = camera && cameraOn ? camera : null;
    if ((selfVideo.srcObject as MediaStream | null)?.getVideoTracks()[0] !== (track ?? undefined)) selfVideo.srcObject = track ? new MediaStream([track]) : null;
    selfOverlay.replaceChildren(...present(!media.video ? offCover(me.name ?? me.userId) : null, h("span", { class: "label" }, `${me.name ?? me.userId} (you)`), flags(media)));
  }

  const attach = (video: HTMLVideoElement, stream: MediaStream) => {
    if (video.srcObject !== stream) video.srcObject = stream;
  };

  function renderPeers(peers: ReadonlyMap<string, RemotePeer>): void {
    for (const [id, t] of remoteTiles) {
      if (peers.has(id)) continue;
      t.li.remove();
      t.screenLi?.remove();
      remoteTiles.delete(id);
    }
    for (const [id, p] of peers) {
      let t = remoteTiles.get(id);
      if (!t) {
        const video = h("video", { autoplay: true, playsinline: true, "aria-label": `${peerName(p.info)}'s camera` });
        const overlay = h("div", { class: "overlay" });
        t = { li: h("li", { class: "tile", "data-peer": id, "data-user": p.info.userId }, video, overlay), video, overlay, screenLi: null };
        remoteTiles.set(id, t);
        tiles.append(t.li);
      }
      attach(t.video, p.camera);
      const connecting = p.connectionState !== "connected";
      t.li.dataset.state = p.connectionState;
      t.overlay.replaceChildren(
        ...present(
          !p.info.media.video ? offCover(peerName(p.info)) : null,
          h("span", { class: "label" }, peerName(p.info), connecting ? h("span", { class: "muted" }, p.connectionState === "failed" ? " — no connection" : " — connecting…") : null),
          flags(p.info.media),
        ),
      );
      if (p.info.media.screen) {
        if (!t.screenLi) {
          const video = h("video", { autoplay: true, playsinline: true, muted: true, "aria-label": `${peerName(p.info)}'s screen` });
          t.screenLi = h("li", { class: "tile screen", "data-screen-of": id }, video, h("span", { class: "label" }, `${peerName(p.info)}'s screen`));
          t.li.after(t.screenLi);
        }
        attach(t.screenLi.querySelector("video")!, p.screen);
      } else if (t.screenLi) {
        t.screenLi.remove();
        t.screenLi = null;
      }
    }
    renderCount();
  }

  function renderCount(): void {
    if (call.state !== "in-call") return;
    const others = call.peers.size;
    setStatus("in-call", others === 0 ? "You are the only one here. Others join with this page's address." : `In the call with ${others} other${others === 1 ? "" : "s"} (at most ${maxPeers} people).`);
  }

  // ---- call ---------------------------------------------------------------------------------------------

  const syncButtons = () => {
    const muted = !call.media.audio;
    muteButton.textContent = muted ? "Unmute" : "Mute";
    muteButton.setAttribute("aria-pressed", String(muted));
    muteButton.disabled = audio === null;
    cameraButton.textContent = cameraOn ? "Turn camera off" : "Turn camera on";
    cameraButton.setAttribute("aria-pressed", String(!cameraOn));
    cameraButton.disabled = camera === null;
    screenButton.textContent = screen ? "Stop sharing" : "Share screen";
    screenButton.setAttribute("aria-pressed", String(screen !== null));
    screenButton.disabled = !navigator.mediaDevices?.getDisplayMedia;
  };

  const join = async () => {
    joinButton.disabled = true;
    setStatus("joining", "Joining the call…");
    try {
      await call.join({ audio, camera: cameraOn ? camera : null });
    } catch (error) {
      joinButton.disabled = false;
      const code = (error as { code?: string }).code;
      if (code === "call_full") {
        // The room's own words carry the limit: "this call is full: 6 people are in it, the most a mesh call takes ...".
        const words = (error as Error).message;
        setStatus("full", words.charAt(0).toUpperCase() + words.slice(1));
        return showAlert(`You could not join: ${words}.`, { key: "call" });
      }
      setStatus("error", "You could not join the call.");
      return showAlert(`You could not join the call: ${(error as Error).message}`, { key: "call" });
    }
    clearAlert("call");
    lobby.hidden = true;
    left.hidden = true;
    stage.hidden = false;
    tiles.replaceChildren(selfTile);
    remoteTiles.clear();
    renderSelf();
    renderPeers(call.peers);
    syncButtons();
  };

  room.on("call", (f) => {
    if (f.type === "call.welcome") maxPeers = f.maxPeers;
  });
  call.on("peers", renderPeers);
  call.on("state", (state) => {
    if (state === "rejoining") setStatus("reconnecting", "Connection lost. Rejoining the call…");
    if (state === "in-call") renderCount();
    renderSelf();
  });
  call.on("error", (e) => {
    if (e.code === "call_full" || (e.fatal && call.state === "left" && !stage.hidden)) {
      stage.hidden = true;
      lobby.hidden = false;
    }
    if (e.code === "negotiation_failed" || e.code === "peer_unreachable") return showAlert(e.message, { key: `peer-${e.connectionId ?? ""}` });
    if (e.code !== "call_full") showAlert(e.message, { key: "call" });
  });
  room.on("status", (s) => {
    if (s.state === "reconnecting" && call.state === "in-call") setStatus("reconnecting", "Connection lost. Reconnecting…");
  });
  room.on("error", (e) => e.fatal && (setStatus("error", e.message), showAlert(e.message, { key: "room" })));

  joinButton.addEventListener("click", () => void join());
  muteButton.addEventListener("click", () => {
    call.setMuted(call.media.audio);
    syncButtons();
    renderSelf();
  });
  cameraButton.addEventListener("click", async () => {
    cameraOn = !cameraOn;
    if (cameraOn && camera?.readyState === "ended") await openCamera(cameraSelect.value || undefined).catch((e) => showAlert(deviceProblem(e), { key: "device" }));
    await call.setTrack("camera", cameraOn ? camera : null);
    // Camera off turns the camera itself off (its light too), not only what is sent.
    if (!cameraOn) camera?.stop();
    syncButtons();
    renderSelf();
  });
  const stopSharing = async () => {
    screen?.stop();
    screen = null;
    await call.setTrack("screen", null);
    syncButtons();
    renderSelf();
  };
  screenButton.addEventListener("click", async () => {
    if (screen) return stopSharing();
    try {
      const track = (await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })).getVideoTracks()[0] ?? null;
      if (!track) return;
      screen = track;
      // Stopped from the browser's own "Stop sharing" bar.
      track.addEventListener("ended", () => void (screen === track && stopSharing()));
      await call.setTrack("screen", track);
    } catch (error) {
      if ((error as { name?: string }).name !== "NotAllowedError") showAlert(`Screen sharing is not available: ${(error as Error).message}`, { key: "screen" });
    }
    syncButtons();
    renderSelf();
  });
  $("leave").addEventListener("click", () => {
    call.leave();
    for (const t of [audio, camera, screen]) t?.stop();
    audio = camera = screen = null;
    stage.hidden = true;
    left.hidden = false;
    setStatus("left", "You left the call.");
    $("rejoin").focus();
  });
  $("rejoin").addEventListener("click", async () => {
    left.hidden = true;
    cameraOn = true;
    await openDevices();
    await join();
  });

  // ---- start --------------------------------------------------------------------------------------------

  try {
    await room.connect();
  } catch (error) {
    setStatus("error", "The room could not be opened.");
    return showAlert((error as Error).message, { key: "room" });
  }
  if (room.me?.role === "viewer") {
    setStatus("viewer", "You are signed in as a viewer: you can follow this room, but not join its call.");
    return;
  }
  setStatus("lobby", "Check your camera and microphone, then join.");
  lobby.hidden = false;
  if (!navigator.mediaDevices?.getUserMedia) {
    $("lobby-note").textContent = "This browser cannot use a camera or microphone here (it needs https).";
  } else {
    await openDevices();
  }
}

void main();
