// Resumable video uploads to the edge's tus endpoint (`POST /uploads`, tus 1.0), through tus-js-client: chunked,
// retried with backoff on network errors, pausable, and resumable after a reload (the browser keeps the upload
// URL per file fingerprint). The JWT goes in the Authorization header of every tus request.
import { Upload } from "tus-js-client";
import { resolveToken, type TokenSource } from "./token.ts";

export interface UploadOptions {
  baseUrl: string;
  token: TokenSource;
  /** shown to the user as the video's title; sent as tus metadata `filename` / `filetype` / `title` */
  title?: string;
  /** bytes per PATCH (default 8 MiB, at most the edge's VIDEO_MAX_CHUNK_BYTES); smaller chunks report progress more often and lose less on a drop */
  chunkSize?: number;
  /** delays between retries of a failed request, ms (default 0.5 s, 1 s, 3 s, 5 s, 10 s) */
  retryDelays?: number[];
  onProgress?(sent: number, total: number): void;
  /** the server assigned the upload URL (the video exists from here on and can be resumed) */
  onCreated?(info: { uploadUrl: string; videoId: string }): void;
}

export interface UploadHandle {
  /** stops sending after the current request; resume() continues from the last byte the server has */
  pause(): Promise<void>;
  resume(): void;
  /** resolves when every byte is on the server */
  done: Promise<{ uploadUrl: string; videoId: string }>;
  readonly uploadUrl: string | null;
}

/** A refused upload in words: the status and the server's message (`upload_too_large`, `unsupported_type`, ...). */
export class UploadRefused extends Error {
  readonly status: number | undefined;
  readonly code: string;
  constructor(message: string, status: number | undefined, code: string) {
    super(message);
    this.name = "UploadRefused";
    this.status = status;
    this.code = code;
  }
}

/** The video id of a tus upload URL: its last path segment (`.../uploads/<videoId>`). */
export function videoIdOfUploadUrl(uploadUrl: string): string {
  const last = new URL(uploadUrl, "http://x").pathname.split("/").filter(Boolean).at(-1);
  if (!last) throw new Error(`upload URL without an id: ${uploadUrl}`);
  return decodeURIComponent(last);
}

export function startUpload(file: File | Blob, opts: UploadOptions): UploadHandle {
  let resolveDone!: (v: { uploadUrl: string; videoId: string }) => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<{ uploadUrl: string; videoId: string }>((res, rej) => ((resolveDone = res), (rejectDone = rej)));
  const name = (file as File).name ?? "video";
  const upload = new Upload(file, {
    endpoint: `${opts.baseUrl.replace(/\/+$/, "")}/uploads`,
    chunkSize: opts.chunkSize ?? 8 * 1024 * 1024,
    retryDelays: opts.retryDelays ?? [500, 1000, 3000, 5000, 10_000],
    metadata: { filename: name, filetype: file.type || "application/octet-stream", title: opts.title ?? name },
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    // A fresh token for every request: a long upload outlives a short-lived JWT.
    async onBeforeRequest(req) {
      req.setHeader("Authorization", `Bearer ${await resolveToken(opts.token, "connect")}`);
    },
    onProgress: (sent, total) => opts.onProgress?.(sent, total),
    onUploadUrlAvailable: () => {
      if (upload.url) opts.onCreated?.({ uploadUrl: upload.url, videoId: videoIdOfUploadUrl(upload.url) });
    },
    onSuccess: () => {
      const url = upload.url ?? "";
      resolveDone({ uploadUrl: url, videoId: videoIdOfUploadUrl(url) });
    },
    // 4xx other than 409/423 (conflict, locked) will not get better by retrying.
    onShouldRetry: (err) => {
      const status = err.originalResponse?.getStatus();
      return status === undefined || status === 409 || status === 423 || status >= 500;
    },
    onError: (err) => {
      const res = (err as { originalResponse?: { getStatus(): number; getBody(): string } | null }).originalResponse;
      const status = res?.getStatus();
      let code = status ? `http_${status}` : "network";
      let message = status ? `the server refused the upload (HTTP ${status})` : `the upload could not reach the server: ${err.message}`;
      try {
        const body = JSON.parse(res?.getBody() ?? "") as { error?: { code?: string; message?: string } };
        if (body.error?.code) code = body.error.code;
        if (body.error?.message) message = body.error.message;
      } catch {
        /* not JSON */
      }
      rejectDone(new UploadRefused(message, status, code));
    },
  });
  const begin = async () => {
    // Continue an upload of the same file cut off earlier (reload, crash) instead of starting over.
    const previous = await upload.findPreviousUploads().catch(() => []);
    if (previous[0]) upload.resumeFromPreviousUpload(previous[0]);
    upload.start();
  };
  void begin();
  return {
    pause: () => upload.abort(false),
    resume: () => upload.start(),
    done,
    get uploadUrl() {
      return upload.url;
    },
  };
}
