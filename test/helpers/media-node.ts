// A media node as production runs it (`node media-node/src/main.ts`, settings from env) for cross-process tests
// and benches: on 127.0.0.1 and free ports, its own work and outbox folders, the storage folder given (nodes of one
// fleet share it, as they share one bucket in production), NATS credentials of the media-node role.

import { join } from "node:path";
import { ROOT, TEST_SECRETS } from "./edge.ts";
import { freePort } from "./ports.ts";
import { type GroupProcess, spawnGroup } from "./process.ts";

export interface MediaNodeProcess {
  nodeId: string;
  /** rtmp://127.0.0.1:<port>/live: where a broadcaster publishes `<streamId>?token=…` */
  rtmpBase: string;
  httpUrl: string;
  opsUrl: string;
  process: GroupProcess;
  /** SIGKILL to the node and its FFmpeg children (a host dying) */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs` */
  stop(graceMs?: number): Promise<void>;
}

export interface MediaNodeProcessOptions {
  nodeId: string;
  /** NATS_URL, NATS_USER, NATS_PASSWORD of the media-node role (NatsServer.env("media-node")) */
  natsEnv: Record<string, string>;
  /** the fs storage driver's folder (shared by the fleet) */
  storeDir: string;
  /** this node's own folders go under it */
  root: string;
  /** anything else (MEDIA_LADDER, MEDIA_LEASE_TTL_S, ...) */
  env?: Record<string, string>;
}

export async function startMediaNodeProcess(o: MediaNodeProcessOptions): Promise<MediaNodeProcess> {
  const [rtmpPort, httpPort, opsPort] = [await freePort(), await freePort(), await freePort()];
  const proc = spawnGroup(process.execPath, [join(ROOT, "media-node/src/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...o.natsEnv,
      MEDIA_NODE_ID: o.nodeId,
      PUBLISH_TOKEN_SECRET: TEST_SECRETS.PUBLISH_TOKEN_SECRET,
      MEDIA_RTMP_PORT: String(rtmpPort),
      MEDIA_HTTP_PORT: String(httpPort),
      MEDIA_OPS_PORT: String(opsPort),
      MEDIA_WORK_DIR: join(o.root, o.nodeId, "work"),
      OUTBOX_DIR: join(o.root, o.nodeId, "outbox"),
      STORAGE_DRIVER: "fs",
      STORAGE_FS_DIR: o.storeDir,
      // Playback URLs name one node's /media, but every node serves the same shared folder.
      STORAGE_FS_PUBLIC_BASE_URL: `http://127.0.0.1:${httpPort}/media`,
      VOD_WORKERS: "0",
      // what the edge hands broadcasters for this node (from its heartbeats)
      MEDIA_PUBLIC_RTMP_URL: `rtmp://127.0.0.1:${rtmpPort}/live`,
      ...o.env,
    },
  });
  await proc.waitForOutput(/"msg":"media node ready"/, 60_000);
  return {
    nodeId: o.nodeId,
    rtmpBase: `rtmp://127.0.0.1:${rtmpPort}/live`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    opsUrl: `http://127.0.0.1:${opsPort}`,
    process: proc,
    kill: () => proc.kill(),
    stop: (graceMs?: number) => proc.stop(graceMs),
  };
}
