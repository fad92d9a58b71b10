/**
 * Image records, one JSON file each, written atomically. The records on disk are the truth:
 * `nodecri image import` writes them beside a running daemon, which notices through an
 * inotify watch and, to be sure, re-reads the directory on every list and on a lookup miss.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, readJson, writeFileAtomic } from './fsutil';
import { hexOf } from './layout';
import type { ImageConfig } from './manifest';

export interface ImageRecord {
  /** the config digest, "sha256:<hex>" */
  id: string;
  /** normalized "registry/repo:tag" */
  repoTags: string[];
  /** "registry/repo@sha256:<manifest or index digest>" */
  repoDigests: string[];
  /** bytes of the unpacked layers (what the image takes on disk) */
  size: number;
  /** the image manifest (for this platform), or null for a docker-archive import */
  manifestDigest: string | null;
  /** chain IDs, bottom layer first */
  layers: string[];
  diffIds: string[];
  config: ImageConfig;
  /** when it was pulled or imported */
  createdAt: string;
}

interface Cached {
  rec: ImageRecord;
  mtimeMs: number;
  size: number;
}

export class ImageStore {
  private readonly cache = new Map<string, Cached>();
  private dirty = true;
  private watcher: fs.FSWatcher | null = null;

  constructor(private readonly dir: string) {}

  private file(id: string): string {
    return path.join(this.dir, `${hexOf(id)}.json`);
  }

  /** Marks the cache stale whenever another process changes a record. */
  watch(onError: (e: unknown) => void): void {
    try {
      this.watcher = fs.watch(this.dir, { persistent: false }, () => {
        this.dirty = true;
      });
      this.watcher.on('error', (e) => {
        this.watcher = null;
        this.dirty = true;
        onError(e);
      });
    } catch (e) {
      onError(e);
    }
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
  }

  /** Re-reads records that changed on disk (all of them with `force`, else only when dirty). */
  async refresh(force = false): Promise<void> {
    if (!force && !this.dirty && this.watcher !== null) return;
    this.dirty = false;
    const seen = new Set<string>();
    for (const name of await fsp.readdir(this.dir)) {
      if (!/^[a-f0-9]{64}\.json$/.test(name)) continue;
      const id = `sha256:${name.slice(0, 64)}`;
      const st = await fsp.stat(path.join(this.dir, name)).catch(() => null);
      if (!st) continue;
      seen.add(id);
      const c = this.cache.get(id);
      if (c && c.mtimeMs === st.mtimeMs && c.size === st.size) continue;
      const rec = await readJson<ImageRecord>(path.join(this.dir, name)).catch(() => null);
      if (rec) this.cache.set(id, { rec, mtimeMs: st.mtimeMs, size: st.size });
    }
    for (const id of [...this.cache.keys()]) if (!seen.has(id)) this.cache.delete(id);
  }

  async all(force = false): Promise<ImageRecord[]> {
    await this.refresh(force);
    return [...this.cache.values()].map((c) => c.rec);
  }

  async put(rec: ImageRecord): Promise<void> {
    const text = JSON.stringify(rec);
    await writeFileAtomic(this.file(rec.id), text);
    const st = await fsp.stat(this.file(rec.id));
    this.cache.set(rec.id, { rec, mtimeMs: st.mtimeMs, size: st.size });
  }

  async delete(id: string): Promise<void> {
    await fsp.rm(this.file(id), { force: true });
    await fsyncDir(this.dir);
    this.cache.delete(id);
  }
}
