// The `fs` driver: objects are files under a root folder, laid out exactly like the bucket would be
// (key "live/abc/720p/seg_3.m4s" → <root>/live/abc/720p/seg_3.m4s), so the local folder can be inspected,
// served, or synced to a bucket as is.
//
// Writes are atomic: the body goes to a hidden temp file in the same folder, then rename() puts it in place.
// rename within a folder is atomic on POSIX, so a reader (the HTTP handler, a player) sees the old object or
// the new one, never half a segment. Content type and Cache-Control live in a hidden sidecar
// (`.<name>.meta.json`) written the same way; keys cannot start a segment with '.', so no key can reach it.

import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { bodyStream, prepareBody } from "./body.ts";
import { contentTypeFor } from "./content-types.ts";
import { StorageError, StorageKeyError } from "./errors.ts";
import { assertObjectKey, checkKeyPrefix } from "./keys.ts";
import type { ObjectInfo, ObjectStore, PutBody, PutOptions, StoredObject } from "./types.ts";

interface Sidecar {
  contentType: string;
  cacheControl?: string;
}

export interface FsObjectStoreOptions {
  /** root folder (created if missing) */
  dir: string;
  /** base of playback URLs, e.g. http://127.0.0.1:8090/media */
  publicBaseUrl: string;
}

export class FsObjectStore implements ObjectStore {
  readonly kind = "fs" as const;
  readonly root: string;
  readonly #publicBaseUrl: string;

  constructor(options: FsObjectStoreOptions) {
    this.root = resolve(options.dir);
    this.#publicBaseUrl = options.publicBaseUrl.replace(/\/+$/, "");
  }

  /** Absolute file path of a key. The key rules already forbid escaping; the prefix check is a second lock. */
  pathOf(key: string): string {
    assertObjectKey(key);
    const path = resolve(this.root, key);
    if (!path.startsWith(this.root + sep)) throw new StorageKeyError(key, "resolves outside the storage root");
    return path;
  }

  #sidecarOf(path: string): string {
    return join(dirname(path), `.${basename(path)}.meta.json`);
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    const path = this.pathOf(key);
    const prepared = await prepareBody(body);
    const sidecar: Sidecar = { contentType: options.contentType ?? contentTypeFor(key), cacheControl: options.cacheControl };
    const tag = `${process.pid}-${randomBytes(6).toString("hex")}`;
    const tmp = join(dirname(path), `.${basename(path)}.tmp-${tag}`);
    const tmpMeta = join(dirname(path), `.${basename(path)}.meta.tmp-${tag}`);
    try {
      options.signal?.throwIfAborted();
      await mkdir(dirname(path), { recursive: true });
      if (prepared.kind === "file") await copyFile(prepared.path, tmp);
      else if (prepared.kind === "bytes") await writeFile(tmp, prepared.bytes, { signal: options.signal });
      else await pipeline(bodyStream(prepared), createWriteStream(tmp), { signal: options.signal });
      await writeFile(tmpMeta, JSON.stringify(sidecar));
      options.signal?.throwIfAborted();
      // Metadata first: a reader that sees the new body also sees its content type.
      await rename(tmpMeta, this.#sidecarOf(path));
      await rename(tmp, path);
    } catch (error) {
      await Promise.all([rm(tmp, { force: true }), rm(tmpMeta, { force: true })]);
      if (error instanceof StorageError) throw error;
      throw new StorageError(`fs put ${key} failed: ${(error as Error).message}`, "FS_WRITE", { cause: error });
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const path = this.pathOf(key);
    let info;
    try {
      info = await stat(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") return null;
      throw new StorageError(`fs head ${key} failed: ${(error as Error).message}`, "FS_READ", { cause: error });
    }
    if (!info.isFile()) return null;
    const sidecar = await this.#readSidecar(path);
    return {
      key,
      size: info.size,
      contentType: sidecar?.contentType ?? contentTypeFor(key),
      cacheControl: sidecar?.cacheControl,
      etag: `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`,
      lastModified: info.mtime,
    };
  }

  async #readSidecar(path: string): Promise<Sidecar | undefined> {
    try {
      return JSON.parse(await readFile(this.#sidecarOf(path), "utf8")) as Sidecar;
    } catch {
      return undefined; // objects dropped in by hand have no sidecar: fall back to the extension
    }
  }

  async get(key: string): Promise<StoredObject | null> {
    const info = await this.head(key);
    if (!info) return null;
    try {
      const body = new Uint8Array(await readFile(this.pathOf(key)));
      return { ...info, size: body.byteLength, body };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw new StorageError(`fs get ${key} failed: ${(error as Error).message}`, "FS_READ", { cause: error });
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    await Promise.all([rm(path, { force: true }), rm(this.#sidecarOf(path), { force: true })]);
  }

  async list(prefix: string): Promise<string[]> {
    const check = checkKeyPrefix(prefix);
    if (!check.ok) throw new StorageKeyError(prefix, check.reason);
    // Walk the deepest folder the prefix names, then filter by the full prefix (it may end mid-name).
    const folder = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    const start = folder ? join(this.root, folder) : this.root;
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
        throw error;
      }
      for (const entry of entries) {
        if (entry.name.startsWith(".")) continue; // temp files and sidecars
        const full = join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile()) {
          const key = relative(this.root, full).split(sep).join("/");
          if (key.startsWith(prefix)) keys.push(key);
        }
      }
    };
    await walk(start);
    return keys.sort();
  }

  async ping(): Promise<void> {
    // Writable, not just present: a read-only or full disk must show up in /healthz.
    const probe = join(this.root, `.ping-${process.pid}-${randomBytes(4).toString("hex")}`);
    try {
      await mkdir(this.root, { recursive: true });
      await writeFile(probe, "ok");
      await rm(probe, { force: true });
    } catch (error) {
      throw new StorageError(`fs storage at ${this.root} is not writable: ${(error as Error).message}`, "FS_UNAVAILABLE", { cause: error });
    }
  }

  publicUrl(key: string): string {
    return `${this.#publicBaseUrl}/${assertObjectKey(key)}`;
  }

  async close(): Promise<void> {
    // nothing held open between calls
  }
}
