/**
 * The image service: what the CRI ImageService RPCs, the container code (rootfs) and the
 * `nodecri image` commands use. It owns the store under `<root>/images` (see layout.ts):
 * records changes one at a time, finds images by id, tag or digest, removes them (untag
 * or delete, as CRI-O does; never while a container uses them) and collects layers and
 * blobs no image needs.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ImageConfig as ImageSection } from '../config';
import { failedPrecondition, notFound } from '../domain/errors';
import type { Logger } from '../obs/logger';
import type { Metrics } from '../obs/metrics';
import { Mutex } from '../util/mutex';
import { credentialsFrom, type AuthConfigFields } from './auth';
import { BlobStore } from './blob-store';
import { readJson, writeFileAtomic } from './fsutil';
import { ImageStore, type ImageRecord } from './image-store';
import { importImages } from './import';
import { LayerStore } from './layer-store';
import { Layout, pidAlive } from './layout';
import { layerLimits } from './limits';
import { parseConfig } from './manifest';
import { PullManager, type CommitInput } from './pull';
import { isImageId, parseReference, repoName, tagged, type NameDefaults } from './reference';
import { RegistryClient } from './registry-client';
import { RootfsStore, type RootfsDirs } from './rootfs-store';

export type { ImageRecord } from './image-store';
export type { RootfsDirs } from './rootfs-store';

export interface ImageServiceOptions {
  root: string;
  /** the [image] section; read on each use so a reload applies */
  config: () => ImageSection;
  log: Logger;
  metrics: Metrics | null;
  userAgent: string;
  /**
   * true for the daemon: watch records written by other processes, clean dead scratch and
   * collect garbage at start-up. false for one-shot commands beside a running daemon,
   * which instead publish what they hold so that the daemon's collection spares it.
   */
  daemon: boolean;
}

export interface FsUsage {
  mountpoint: string;
  usedBytes: number;
  inodesUsed: number;
}

/** How a lookup matched: removal by a tag only untags when other tags remain. */
type Match = { rec: ImageRecord; by: 'id' | 'tag' | 'digest'; tag: string | null };

export class ImageService {
  readonly layout: Layout;
  private readonly blobs: BlobStore;
  private readonly layers: LayerStore;
  private readonly images: ImageStore;
  private readonly rootfs: RootfsStore;
  private readonly pulls: PullManager;
  private readonly mutex = new Mutex();
  private readonly holds = new Map<string, number>();

  private constructor(private readonly opts: ImageServiceOptions) {
    this.layout = new Layout(opts.root);
    this.blobs = new BlobStore(this.layout.blobs);
    this.layers = new LayerStore(this.layout);
    this.images = new ImageStore(this.layout.images);
    this.rootfs = new RootfsStore(this.layout);
    const cfg = opts.config();
    this.pulls = new PullManager({
      client: new RegistryClient({ userAgent: opts.userAgent, idleTimeoutMs: Math.min(30, cfg.pullTimeout || 30) * 1000 }),
      layers: this.layers,
      config: opts.config,
      log: opts.log,
      metrics: opts.metrics,
      commit: (input) => this.commit(input),
      hold: (digests) => this.hold(digests),
      localBlob: (digest) => this.blobs.get(digest),
      collect: () => this.gc(),
    });
  }

  static async open(opts: ImageServiceOptions): Promise<ImageService> {
    const svc = new ImageService(opts);
    await svc.layout.create();
    if (opts.daemon) {
      const removed = await svc.layout.cleanScratch();
      if (removed.length > 0) opts.log.warn({ removed }, 'removed unfinished image work left by a process that is gone');
      svc.images.watch((e) => opts.log.warn({ err: e }, 'cannot watch image records; re-reading them on each call'));
    }
    await svc.rootfs.load();
    await svc.images.refresh(true);
    if (opts.daemon) await svc.gc();
    return svc;
  }

  close(): void {
    this.images.close();
  }

  private names(): NameDefaults {
    return this.opts.config();
  }

  /** The configured pause image as a normalized tag ("" if it names none). */
  pauseImageTag(): string {
    try {
      return tagged(parseReference(this.opts.config().pauseImage, this.names())) ?? '';
    } catch {
      return '';
    }
  }

  // ---- lookups ----

  /** Finds an image by id (full, or a unique prefix of 12+), by tag, or by repo digest. */
  private async find(text: string): Promise<Match | null> {
    const hit = this.match(await this.images.all(), text);
    if (hit !== null) return hit;
    // A record written by another process a moment ago: look on disk before saying no.
    return this.match(await this.images.all(true), text);
  }

  private match(all: ImageRecord[], text: string): Match | null {
    if (isImageId(text)) {
      const id = text.startsWith('sha256:') ? text : `sha256:${text}`;
      const rec = all.find((r) => r.id === id);
      if (rec) return { rec, by: 'id', tag: null };
    }
    let ref = null;
    try {
      ref = parseReference(text, this.names());
    } catch {
      // not a reference: maybe an id prefix
    }
    if (ref !== null) {
      if (ref.digest !== null) {
        const rd = `${repoName(ref)}@${ref.digest}`;
        const rec = all.find((r) => r.repoDigests.includes(rd));
        if (rec) return { rec, by: 'digest', tag: null };
      } else {
        const t = tagged(ref);
        const rec = all.find((r) => t !== null && r.repoTags.includes(t));
        if (rec) return { rec, by: 'tag', tag: t };
      }
    }
    const prefix = text.replace(/^sha256:/, '');
    if (/^[a-f0-9]{12,63}$/.test(prefix)) {
      const hits = all.filter((r) => r.id.startsWith(`sha256:${prefix}`));
      if (hits.length === 1) return { rec: hits[0], by: 'id', tag: null };
    }
    return null;
  }

  async list(filter: string | null): Promise<ImageRecord[]> {
    if (filter) {
      const m = await this.find(filter);
      return m ? [m.rec] : [];
    }
    return this.images.all(true);
  }

  async status(text: string): Promise<ImageRecord | null> {
    return (await this.find(text))?.rec ?? null;
  }

  // ---- pull, import, commit ----

  async pull(text: string, auth: AuthConfigFields | null, signal: AbortSignal): Promise<ImageRecord> {
    return this.pulls.pull(text, credentialsFrom(auth), signal);
  }

  async importPath(input: string, tag: string | null, signal: AbortSignal): Promise<ImageRecord[]> {
    try {
      return await importImages(
        {
          layout: this.layout,
          layers: this.layers,
          names: this.names(),
          commit: (i) => this.commit(i),
          hold: (d) => this.hold(d),
          discard: (chainIds) => this.discardLayers(chainIds),
          limits: layerLimits(this.opts.config()),
        },
        input,
        { tag, signal },
      );
    } finally {
      await this.settleHolds();
    }
  }

  /** Writes blobs, then the record (moving its tags off other images), in one critical section. */
  private commit(input: CommitInput): Promise<ImageRecord> {
    return this.mutex.run(async () => {
      for (const m of input.manifests) await this.blobs.put(m.digest, m.body);
      await this.blobs.put(input.configDigest, input.configBody);
      const all = await this.images.all(true);
      let size = 0;
      for (const l of input.layers) {
        const rec = await this.layers.get(l);
        if (rec === null) throw new Error(`layer ${l} vanished before image ${input.configDigest} was recorded`);
        size += rec.size;
      }
      const existing = all.find((r) => r.id === input.configDigest);
      const union = (a: string[], b: string[]) => [...new Set([...a, ...b])];
      const rec: ImageRecord = {
        id: input.configDigest,
        repoTags: union(existing?.repoTags ?? [], input.tags),
        repoDigests: union(existing?.repoDigests ?? [], input.repoDigests),
        size,
        manifestDigest: input.manifestDigest ?? existing?.manifestDigest ?? null,
        layers: input.layers,
        diffIds: input.diffIds,
        config: parseConfig(input.configBody, `config ${input.configDigest}`),
        createdAt: existing?.createdAt ?? new Date().toISOString(),
      };
      for (const other of all) {
        if (other.id === rec.id) continue;
        const kept = other.repoTags.filter((t) => !input.tags.includes(t));
        if (kept.length !== other.repoTags.length) await this.images.put({ ...other, repoTags: kept });
      }
      if (!existing || JSON.stringify(existing) !== JSON.stringify(rec)) await this.images.put(rec);
      return rec;
    });
  }

  // ---- removal and garbage collection ----

  /** Removes `text`: a tag of an image with other tags is untagged; otherwise the image goes. Unknown is fine. */
  async remove(text: string): Promise<void> {
    const removed = await this.mutex.run(async () => {
      const m = await this.find(text);
      if (m === null) return false;
      if (m.by === 'tag' && m.tag !== null && m.rec.repoTags.length > 1) {
        await this.images.put({ ...m.rec, repoTags: m.rec.repoTags.filter((t) => t !== m.tag) });
        return false;
      }
      const users = await this.rootfs.usedBy(m.rec.id);
      if (users.length > 0) {
        const names = m.rec.repoTags.length > 0 ? ` (${m.rec.repoTags.join(', ')})` : '';
        throw failedPrecondition(`image ${m.rec.id}${names} is in use by container${users.length > 1 ? 's' : ''} ${users.join(', ')}`);
      }
      await this.images.delete(m.rec.id);
      this.opts.log.info({ id: m.rec.id, tags: m.rec.repoTags }, `removed image ${m.rec.id}`);
      return true;
    });
    if (removed) await this.gc();
  }

  private hold(digests: string[]): () => void {
    for (const d of digests) this.holds.set(d, (this.holds.get(d) ?? 0) + 1);
    this.publishHolds();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const d of digests) {
        const n = (this.holds.get(d) ?? 1) - 1;
        if (n <= 0) this.holds.delete(d);
        else this.holds.set(d, n);
      }
      this.publishHolds();
    };
  }

  private holdsFile(pid: number): string {
    return path.join(this.layout.tmp, `${pid}-holds.json`);
  }

  /** One-shot commands write what they hold where the daemon's collection looks. */
  private publishHolds(): void {
    if (this.opts.daemon) return;
    const text = JSON.stringify([...this.holds.keys()]);
    void this.mutex.run(() => writeFileAtomic(this.holdsFile(process.pid), text)).catch(() => undefined);
  }

  /** Once a one-shot command holds nothing, its holds file goes (after any write still queued). */
  private async settleHolds(): Promise<void> {
    if (this.opts.daemon || this.holds.size > 0) return;
    await this.mutex.run(() => fsp.rm(this.holdsFile(process.pid), { force: true }));
  }

  /**
   * Removes layers that a failed import created, unless an image or another process's
   * pull or import needs them.
   */
  private async discardLayers(chainIds: string[]): Promise<void> {
    if (chainIds.length === 0) return;
    await this.mutex.run(async () => {
      const keep = new Set<string>([...this.holds.keys(), ...(await this.foreignHolds())]);
      for (const rec of await this.images.all(true)) for (const l of rec.layers) keep.add(l);
      for (const l of chainIds) if (!keep.has(l)) await this.layers.remove(l);
    });
  }

  /** Digests that other live processes (an import beside the daemon) hold. */
  private async foreignHolds(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const name of await fsp.readdir(this.layout.tmp)) {
      const m = /^(\d+)-holds\.json$/.exec(name);
      if (!m || Number(m[1]) === process.pid || !pidAlive(Number(m[1]))) continue;
      for (const d of (await readJson<string[]>(path.join(this.layout.tmp, name)).catch(() => null)) ?? []) out.add(d);
    }
    return out;
  }

  /** Removes layers and blobs that no image, running pull or import needs. */
  async gc(): Promise<void> {
    await this.mutex.run(async () => {
      const keep = new Set<string>([...this.holds.keys(), ...(await this.foreignHolds())]);
      for (const rec of await this.images.all(true)) {
        keep.add(rec.id);
        if (rec.manifestDigest) keep.add(rec.manifestDigest);
        for (const d of rec.repoDigests) keep.add(d.slice(d.indexOf('@') + 1));
        for (const l of rec.layers) keep.add(l);
      }
      const removed: string[] = [];
      for (const l of await this.layers.list()) {
        if (keep.has(l.chainId)) continue;
        await this.layers.remove(l.chainId);
        removed.push(l.chainId);
      }
      for (const b of await this.blobs.list()) {
        if (keep.has(b.digest)) continue;
        await this.blobs.remove(b.digest);
        removed.push(b.digest);
      }
      if (removed.length > 0) this.opts.log.info({ removed }, `garbage-collected ${removed.length} unused layers and blobs`);
    });
  }

  // ---- container rootfs ----

  /**
   * The overlay directories for a container of `image` (an id, tag or digest): the image's
   * layers top first, and a fresh upper and work dir. The container code mounts them.
   */
  async prepareRootfs(image: string, containerId: string): Promise<RootfsDirs> {
    return this.mutex.run(async () => {
      const m = await this.find(image);
      if (m === null) throw notFound(`image ${image} not found`);
      const dirs = await this.rootfs.create(containerId, m.rec.id);
      const lowerDirs = m.rec.layers.length === 0 ? [this.layout.empty] : [...m.rec.layers].reverse().map((l) => this.layers.diffDir(l));
      return { lowerDirs, ...dirs };
    });
  }

  /** Removes a container's upper and work dirs (unmounted by then). Unknown ids are fine. */
  releaseRootfs(containerId: string): Promise<void> {
    return this.mutex.run(() => this.rootfs.remove(containerId));
  }

  /** Ids of containers that have a writable layer here, for the orphan sweep. */
  rootfsOwners(): Promise<string[]> {
    return this.mutex.run(() => this.rootfs.owners());
  }

  /** Ids of containers whose rootfs comes from `imageId`. */
  usedBy(imageId: string): Promise<string[]> {
    return this.rootfs.usedBy(imageId);
  }

  // ---- filesystem usage ----

  async fsUsage(): Promise<FsUsage> {
    let usedBytes = 0;
    let inodesUsed = 0;
    for (const l of await this.layers.list()) {
      usedBytes += l.size;
      inodesUsed += l.inodes + 1;
    }
    for (const b of await this.blobs.list()) {
      usedBytes += b.size;
      inodesUsed++;
    }
    return { mountpoint: this.layout.dir, usedBytes, inodesUsed };
  }
}
