/**
 * Where the image store keeps things under `<root>/images`, and the scratch space that a
 * restart cleans:
 *
 *   blobs/sha256/<hex>        manifests, indexes and configs, by digest
 *   layers/<chainid hex>/     one unpacked layer: diff/ (an overlay lower dir) + layer.json
 *   images/<id hex>.json      image records; one appears only when all its layers exist
 *   rootfs/<container id>/    a container's upper/ and work/ dirs + rootfs.json (the image in use)
 *   tmp/<pid>-*               work in progress of the process <pid>; removed when that pid is gone
 *   empty/                    the lower dir of an image with no layers
 */
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';

export class Layout {
  readonly dir: string;
  readonly blobs: string;
  readonly layers: string;
  readonly images: string;
  readonly rootfs: string;
  readonly tmp: string;
  readonly empty: string;

  constructor(root: string) {
    this.dir = path.join(root, 'images');
    this.blobs = path.join(this.dir, 'blobs', 'sha256');
    this.layers = path.join(this.dir, 'layers');
    this.images = path.join(this.dir, 'images');
    this.rootfs = path.join(this.dir, 'rootfs');
    this.tmp = path.join(this.dir, 'tmp');
    this.empty = path.join(this.dir, 'empty');
  }

  async create(): Promise<void> {
    for (const d of [this.blobs, this.layers, this.images, this.rootfs, this.tmp, this.empty]) {
      await fsp.mkdir(d, { recursive: true, mode: 0o711 });
    }
  }

  /** A fresh scratch directory owned by this process. */
  async scratch(kind: string): Promise<string> {
    const p = path.join(this.tmp, `${process.pid}-${kind}-${randomBytes(6).toString('hex')}`);
    await fsp.mkdir(p, { mode: 0o700 });
    return p;
  }

  /**
   * Removes scratch left by processes that are gone (a kill -9 mid-pull): every tmp/ entry
   * whose pid is dead, or is ours (then it is an earlier process's: call this at start-up
   * only). An `nodecri image import` running beside the daemon keeps its own. Returns the
   * names removed.
   */
  async cleanScratch(): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await fsp.readdir(this.tmp)) {
      const pid = Number(/^(\d+)-/.exec(name)?.[1] ?? NaN);
      if (Number.isInteger(pid) && pid !== process.pid && pidAlive(pid)) continue;
      await fsp.rm(path.join(this.tmp, name), { recursive: true, force: true });
      removed.push(name);
    }
    return removed;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export const hexOf = (digest: string): string => digest.replace(/^sha256:/, '');
