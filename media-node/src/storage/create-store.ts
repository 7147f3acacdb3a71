// One place that turns configuration into a driver, so the node never branches on the driver kind itself.

import type { StoreConfig } from "./config.ts";
import { FsObjectStore } from "./fs-store.ts";
import { S3ObjectStore } from "./s3-store.ts";
import type { ObjectStore } from "./types.ts";

export function createObjectStore(config: StoreConfig): ObjectStore {
  if (config.driver === "fs") return new FsObjectStore({ dir: config.dir, publicBaseUrl: config.publicBaseUrl });
  const { driver: _driver, ...options } = config;
  return new S3ObjectStore(options);
}
