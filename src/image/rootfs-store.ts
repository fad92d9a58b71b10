/**
 * Containers' writable layers: `rootfs/<container id>/{upper,work}` with a rootfs.json that
 * names the image in use. The records are what makes RemoveImage refuse an image in use,
 * so they survive restarts; each appears (and disappears) by one rename.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { invalidArgument } from '../domain/errors';
import { errnoCode, fsyncDir, readJson, writeFileAtomic } from './fsutil';
import type { Layout } from './layout';

export interface RootfsRecord {
  containerId: string;
  imageId: string;
  createdAt: string;
}

export interface RootfsDirs {
  /** overlay lower dirs, top layer first (as the lowerdir= option lists them) */
  lowerDirs: string[];
  upperDir: string;
  workDir: string;
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export class RootfsStore {
  private readonly records = new Map<string, RootfsRecord>();

  constructor(private readonly layout: Layout) {}

  private dir(containerId: string): string {
    return path.join(this.layout.rootfs, containerId);
  }

  async load(): Promise<void> {
    this.records.clear();
    for (const name of await fsp.readdir(this.layout.rootfs)) {
      const rec = await readJson<RootfsRecord>(path.join(this.layout.rootfs, name, 'rootfs.json')).catch(() => null);
      if (rec) this.records.set(rec.containerId, rec);
    }
  }

  /** Container ids whose rootfs uses `imageId`, read from disk (the records are the truth). */
  async usedBy(imageId: string): Promise<string[]> {
    await this.load();
    return [...this.records.values()].filter((r) => r.imageId === imageId).map((r) => r.containerId);
  }

  /** Every container id that has a dir here (with or without its record), for the orphan sweep. */
  async owners(): Promise<string[]> {
    return (await fsp.readdir(this.layout.rootfs)).filter((n) => CONTAINER_ID.test(n));
  }

  get(containerId: string): RootfsRecord | null {
    return this.records.get(containerId) ?? null;
  }

  /** Creates the upper and work dirs of a container; returns them. */
  async create(containerId: string, imageId: string): Promise<{ upperDir: string; workDir: string }> {
    if (!CONTAINER_ID.test(containerId)) throw invalidArgument(`invalid container id ${JSON.stringify(containerId)}`);
    const dir = this.dir(containerId);
    const upperDir = path.join(dir, 'upper');
    const workDir = path.join(dir, 'work');
    const existing = this.records.get(containerId);
    if (existing) {
      if (existing.imageId !== imageId) throw invalidArgument(`container ${containerId} already has a rootfs of image ${existing.imageId}`);
      return { upperDir, workDir };
    }
    const scratch = await this.layout.scratch('rootfs');
    try {
      await fsp.mkdir(path.join(scratch, 'upper'), { mode: 0o755 });
      await fsp.mkdir(path.join(scratch, 'work'), { mode: 0o700 });
      const rec: RootfsRecord = { containerId, imageId, createdAt: new Date().toISOString() };
      await writeFileAtomic(path.join(scratch, 'rootfs.json'), JSON.stringify(rec));
      await fsp.rename(scratch, dir);
      await fsyncDir(this.layout.rootfs);
      this.records.set(containerId, rec);
    } catch (e) {
      await fsp.rm(scratch, { recursive: true, force: true });
      throw e;
    }
    return { upperDir, workDir };
  }

  /** Removes a container's dirs; unknown ids are fine. */
  async remove(containerId: string): Promise<void> {
    if (!CONTAINER_ID.test(containerId)) return;
    const graveyard = await this.layout.scratch('release');
    try {
      await fsp.rename(this.dir(containerId), path.join(graveyard, 'rootfs'));
      await fsyncDir(this.layout.rootfs);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') {
        await fsp.rm(graveyard, { recursive: true, force: true });
        throw e;
      }
    }
    this.records.delete(containerId);
    await fsp.rm(graveyard, { recursive: true, force: true });
  }
}
