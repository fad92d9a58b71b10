/** Small blobs (manifests, indexes, configs) by digest, written atomically and verified. */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic, errnoCode } from './fsutil';
import { hexOf } from './layout';
import { DigestMismatchError, sha256 } from './manifest';

export class BlobStore {
  constructor(private readonly dir: string) {}

  file(digest: string): string {
    return path.join(this.dir, hexOf(digest));
  }

  async put(digest: string, data: Buffer): Promise<void> {
    const actual = sha256(data);
    if (actual !== digest) throw new DigestMismatchError(`blob ${digest}`, digest, actual);
    try {
      await fsp.access(this.file(digest));
      return;
    } catch {
      await writeFileAtomic(this.file(digest), data);
    }
  }

  async get(digest: string): Promise<Buffer | null> {
    try {
      return await fsp.readFile(this.file(digest));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return null;
      throw e;
    }
  }

  async list(): Promise<Array<{ digest: string; size: number }>> {
    const out: Array<{ digest: string; size: number }> = [];
    for (const name of await fsp.readdir(this.dir)) {
      if (!/^[a-f0-9]{64}$/.test(name)) continue;
      const st = await fsp.stat(path.join(this.dir, name)).catch(() => null);
      if (st) out.push({ digest: `sha256:${name}`, size: st.size });
    }
    return out;
  }

  async remove(digest: string): Promise<void> {
    await fsp.rm(this.file(digest), { force: true });
  }
}
