// The real tus-js-client (what browsers and Node apps use) against the real edge under wrangler dev: an upload in
// chunks through a TCP proxy that cuts the connection in the middle of a chunk once. The client must resume by
// itself (HEAD for the offset, then PATCH from there) and the stored object must be the file, byte for byte.
import { randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Upload } from "tus-js-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";

const MiB = 1024 * 1024;

/** A TCP proxy to `target` that, once armed, destroys the connection carrying byte `cutAt` of client data. */
interface CuttingProxy {
  port: number;
  /** cut the connection once it has carried this many more client bytes */
  arm(bytes: number): void;
  cuts: number;
  close(): Promise<void>;
}

function cuttingProxy(targetPort: number): Promise<CuttingProxy> {
  const sockets = new Set<Socket>();
  let remaining: number | null = null;
  const proxy: CuttingProxy = {
    port: 0,
    cuts: 0,
    arm(bytes) {
      remaining = bytes;
    },
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("data", (data: Buffer) => {
      if (remaining !== null && data.byteLength >= remaining) {
        // Forward what fits and end the request there, in the middle of its body; the client's side is torn
        // down without an answer. (The edge side ends with FIN rather than a reset, so the bytes already sent
        // are delivered and what the edge keeps of them does not depend on timing.)
        if (remaining > 0) upstream.write(data.subarray(0, remaining));
        remaining = null;
        proxy.cuts++;
        client.destroy();
        upstream.end();
        upstream.setTimeout(5000, drop);
        return;
      }
      if (remaining !== null) remaining -= data.byteLength;
      if (!upstream.write(data)) client.pause();
    });
    upstream.on("drain", () => client.resume());
    upstream.on("data", (data: Buffer) => client.write(data));
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", () => sockets.delete(client));
    upstream.on("close", drop);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      proxy.port = (server.address() as { port: number }).port;
      resolve(proxy);
    }),
  );
}

describe("tus-js-client against the edge", () => {
  let edge: EdgeServer;
  beforeAll(async () => {
    // 5 MiB parts (R2's minimum) so the file spans several parts and a tail.
    edge = await startEdge({ VIDEO_UPLOAD_PART_BYTES: String(5 * MiB) });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it("uploads in chunks, resumes by itself after the connection is cut mid-chunk, and stores the file byte for byte", async () => {
    const proxy = await cuttingProxy(edge.port);
    try {
      const file = randomBytes(13 * MiB + 333);
      const chunkSize = 4 * MiB;
      const token = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "tus-js-user" });
      const requests: { method: string; offset: string | undefined }[] = [];
      const accepted: number[] = [];
      let armed = false;
      const url = await new Promise<string>((resolve, reject) => {
        const upload = new Upload(file, {
          endpoint: `http://127.0.0.1:${proxy.port}/uploads`,
          chunkSize,
          retryDelays: [0, 250, 1000, 2000],
          headers: { Authorization: `Bearer ${token}` },
          metadata: { filename: "cut.mp4", filetype: "video/mp4", title: "Cut mid-chunk" },
          storeFingerprintForResuming: false,
          onBeforeRequest(req) {
            requests.push({ method: req.getMethod(), offset: req.getHeader("Upload-Offset") ?? undefined });
            // The second chunk's PATCH dies after 1.5 MiB of its body (plus headers) went through.
            if (!armed && req.getMethod() === "PATCH" && req.getHeader("Upload-Offset") === String(chunkSize)) {
              armed = true;
              proxy.arm(1.5 * MiB);
            }
          },
          onChunkComplete: (_size, bytesAccepted) => accepted.push(bytesAccepted),
          onSuccess: () => resolve(upload.url!),
          onError: reject,
        });
        upload.start();
      });

      expect(proxy.cuts).toBe(1);
      // The upload URL goes through the proxy (the edge builds Location from the request it was sent).
      expect(new URL(url).port).toBe(String(proxy.port));
      // After the cut: a HEAD for the offset, then a PATCH from what the edge had stored. Bytes of the cut chunk
      // that reached the edge were kept, so the resumed PATCH starts past the chunk boundary.
      const cutAt = requests.findIndex((r) => r.method === "PATCH" && r.offset === String(chunkSize));
      const after = requests.slice(cutAt + 1);
      expect(after[0]?.method).toBe("HEAD");
      const resumedFrom = Number(after.find((r) => r.method === "PATCH")?.offset);
      expect(resumedFrom).toBeGreaterThan(chunkSize);
      expect(resumedFrom).toBeLessThanOrEqual(chunkSize + 1.5 * MiB);
      expect(accepted.at(-1)).toBe(file.byteLength);

      const videoId = new URL(url).pathname.split("/").at(-1)!;
      const stored = await fetch(`${edge.url}/internal/media/uploads/${videoId}/source`, { headers: { authorization: `Bearer ${TEST_SECRETS.INTERNAL_API_TOKEN}` } });
      expect(stored.status).toBe(200);
      const bytes = Buffer.from(await stored.arrayBuffer());
      expect(bytes.byteLength).toBe(file.byteLength);
      expect(bytes.equals(file)).toBe(true);

      const video = await fetch(`${edge.url}/videos/${videoId}`, { headers: { authorization: `Bearer ${token}` } });
      expect(((await video.json()) as { video: { status: string; size: number; title: string } }).video).toMatchObject({ status: "queued", size: file.byteLength, title: "Cut mid-chunk" });
    } finally {
      await proxy.close();
    }
  });
});
