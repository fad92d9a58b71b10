/**
 * Unpacked layers by chain ID. A layer is built in a scratch directory and renamed into
 * place only when complete and flushed to disk, so `layers/<chainid>` either does not exist
 * or is whole; removal renames it away first for the same reason.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { syncfs } from '../native/fs';
import { errnoCode, fsyncDir, readJson, writeFileAtomic } from './fsutil';
import { hexOf, type Layout } from './layout';

export interface LayerRecord {
  chainId: string;
  diffId: string;
  /** the chain ID of the layer below, or null for a base layer */
  parent: string | null;
  /** bytes of file data */
  size: number;
  inodes: number;
  /** the digest of the blob it came from, when known */
  blobDigest: string | null;
  blobSize: number | null;
  createdAt: string;
}

export interface LayerFill {
  size: number;
  inodes: number;
  blobDigest: string | null;
  blobSize: number | null;
}

export class LayerStore {
  constructor(private readonly layout: Layout) {}

  private dir(chainId: string): string {
    return path.join(this.layout.layers, hexOf(chainId));
  }

  /** The overlay lower dir of a layer. */
  diffDir(chainId: string): string {
    return path.join(this.dir(chainId), 'diff');
  }

  get(chainId: string): Promise<LayerRecord | null> {
    return readJson<LayerRecord>(path.join(this.dir(chainId), 'layer.json'));
  }

  async has(chainId: string): Promise<boolean> {
    return (await this.get(chainId)) !== null;
  }

  async list(): Promise<LayerRecord[]> {
    const out: LayerRecord[] = [];
    for (const name of await fsp.readdir(this.layout.layers)) {
      const rec = await readJson<LayerRecord>(path.join(this.layout.layers, name, 'layer.json')).catch(() => null);
      if (rec) out.push(rec);
    }
    return out;
  }

  /**
   * Builds a layer: `fill` writes its content into the given empty dir. On success the layer
   * is flushed and renamed into place; on failure nothing remains.
   */
  async create(chainId: string, diffId: string, parent: string | null, fill: (dir: string) => Promise<LayerFill>): Promise<LayerRecord> {
    const scratch = await this.layout.scratch('layer');
    try {
      const diff = path.join(scratch, 'diff');
      await fsp.mkdir(diff, { mode: 0o755 });
      const f = await fill(diff);
      const rec: LayerRecord = { chainId, diffId, parent, size: f.size, inodes: f.inodes, blobDigest: f.blobDigest, blobSize: f.blobSize, createdAt: new Date().toISOString() };
      await writeFileAtomic(path.join(scratch, 'layer.json'), JSON.stringify(rec));
      // One flush of the filesystem rather than an fsync per file: the layer's data must be
      // on disk before its name says it is complete.
      await syncfs(scratch);
      try {
        await fsp.rename(scratch, this.dir(chainId));
      } catch (e) {
        // Another process committed the same layer first: theirs is as good as ours.
        if (errnoCode(e) !== 'ENOTEMPTY' && errnoCode(e) !== 'EEXIST') throw e;
        await fsp.rm(scratch, { recursive: true, force: true });
        return (await this.get(chainId)) ?? rec;
      }
      await fsyncDir(this.layout.layers);
      return rec;
    } catch (e) {
      await fsp.rm(scratch, { recursive: true, force: true });
      throw e;
    }
  }

  async remove(chainId: string): Promise<void> {
    const dir = this.dir(chainId);
    const graveyard = path.join(await this.layout.scratch('gc'), 'layer');
    try {
      await fsp.rename(dir, graveyard);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
    }
    await fsp.rm(path.dirname(graveyard), { recursive: true, force: true });
  }
}
