// Upload page (`/upload`): drag and drop (or pick) a video, resumable upload with progress and pause/resume,
// (tus to POST /uploads), then processing progress from the inbox (and GET /videos/:id) until it is ready, with a
// link to watch as soon as it is playable.
import { startUpload, type UploadHandle, UploadRefused } from "../../shared/client/upload.ts";
import { pageToken } from "./auth.ts";
import { bootPage, getJson, reportUncaught } from "./boot.ts";
import { $, showAlert } from "./dom.ts";

/** The videos API's answer (`GET /videos/:id` → `{video}`), as far as this page reads it. */
interface VideoResource {
  id: string;
  status: "uploading" | "queued" | "processing" | "playable" | "ready" | "failed";
  progress?: { stage: string; percent: number } | null;
  failure?: { stage?: string; reason: string } | null;
}

async function main(): Promise<void> {
  reportUncaught();
  const session = await bootPage();
  if (!session) return;
  const drop = $("drop");
  const file = $<HTMLInputElement>("file");
  const pause = $<HTMLButtonElement>("pause");
  let handle: UploadHandle | null = null;
  let paused = false;

  const processing = (percent: number, text: string) => {
    $<HTMLProgressElement>("processing-progress").value = percent;
    $("processing-text").textContent = text;
  };
  // `playable`: every rendition plays from the start while the rest is still encoded, so the link comes early.
  const showWatchLink = (videoId: string) => {
    const link = $<HTMLAnchorElement>("watch-link");
    if (!$("done").hidden) return;
    link.href = `/watch/${encodeURIComponent(videoId)}`;
    $("done").hidden = false;
  };
  const ready = (videoId: string) => {
    processing(100, "Ready to watch.");
    showWatchLink(videoId);
    $<HTMLAnchorElement>("watch-link").focus();
  };

  const begin = (f: File) => {
    if (!f.type.startsWith("video/") && !/\.(mp4|mov|mkv|webm|m4v|avi|ts)$/i.test(f.name)) {
      return showAlert(`${f.name} is not a video file.`, { key: "upload" });
    }
    $("progress-box").hidden = false;
    $("file-name").textContent = f.name;
    $("done").hidden = true;
    paused = false;
    pause.textContent = "Pause";
    handle = startUpload(f, {
      baseUrl: location.origin,
      token: pageToken,
      onProgress: (sent, total) => {
        const pct = total ? Math.floor((sent / total) * 100) : 0;
        $<HTMLProgressElement>("upload-progress").value = pct;
        $("upload-percent").textContent = `${pct}%`;
      },
    });
    (globalThis as { pulsecast?: unknown }).pulsecast = { upload: handle, inbox: session.inbox };
    handle.done.then(
      async ({ videoId }) => {
        pause.hidden = true;
        processing(0, "Uploaded. Processing…");
        session.inbox.on("progress", (p) => p.mediaId === videoId && processing(p.percent, `Processing (${p.stage}): ${Math.round(p.percent)}%`));
        session.inbox.on("notification", (n) => {
          const mediaId = (n.data as { mediaId?: string } | undefined)?.mediaId;
          if (mediaId !== videoId) return;
          if (n.kind === "media.ready") ready(videoId);
          if (n.kind === "media.failed") processing(0, `Processing failed: ${n.body ?? n.title}`);
        });
        // The inbox may miss progress sent before it connected; the video's own status settles it.
        for (;;) {
          const v = (await getJson<{ video: VideoResource }>(`/videos/${encodeURIComponent(videoId)}`).catch(() => null))?.video;
          if (v?.status === "ready") return ready(videoId);
          if (v?.status === "failed") return processing(0, `Processing failed${v.failure ? `: ${v.failure.reason}` : "."}`);
          if (v?.status === "playable") showWatchLink(videoId);
          if (v?.progress) processing(v.progress.percent, `Processing (${v.progress.stage}): ${Math.round(v.progress.percent)}%`);
          else if (v?.status === "queued") processing(0, "Uploaded. Waiting for a media node…");
          await new Promise((r) => setTimeout(r, 2000));
        }
      },
      (e: Error) => showAlert(e instanceof UploadRefused ? `Upload refused: ${e.message}` : `Upload failed: ${e.message}`, { key: "upload" }),
    );
  };

  pause.addEventListener("click", async () => {
    if (!handle) return;
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    if (paused) await handle.pause();
    else handle.resume();
  });
  file.addEventListener("change", () => file.files?.[0] && begin(file.files[0]));
  drop.addEventListener("keydown", (ev) => (ev.key === "Enter" || ev.key === " ") && (ev.preventDefault(), file.click()));
  drop.addEventListener("dragover", (ev) => (ev.preventDefault(), drop.classList.add("over")));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    const f = ev.dataTransfer?.files[0];
    if (f) begin(f);
  });
}

void main();
