/**
 * The pull manager: resolves a reference on its endpoints (mirrors first), fetches the
 * manifest (choosing this platform in an index) and config, then every missing layer
 * concurrently, each streamed from the registry straight into its layer directory, with at
 * most `max_concurrent_downloads` layer downloads across all pulls. Concurrent pulls of one
 * reference share one run; a layer being fetched for one image is awaited, not fetched
 * again, by another. Progress is logged every few seconds.
 */
import { createHash } from 'node:crypto';
import type { ImageConfig as ImageSection } from '../config';
import { RuntimeError, invalidArgument } from '../domain/errors';
import type { Logger } from '../obs/logger';
import type { Metrics } from '../obs/metrics';
import { Semaphore } from '../util/semaphore';
import type { Credentials } from './auth';
import { endpointsFor, type Endpoint } from './endpoints';
import { readBody } from './http';
import type { ImageRecord } from './image-store';
import type { LayerStore } from './layer-store';
import { unpackLayerStream } from './layer-stream';
import { layerLimits } from './limits';
import { chainIds, DigestMismatchError, hostPlatform, parseConfig, parseManifest, selectPlatform, sha256, type Descriptor } from './manifest';
import { formatReference, parseReference, repoName, tagged, type ImageReference } from './reference';
import type { RegistryClient } from './registry-client';
import { raceAbort } from '../util/abort';

/** What a pull or an import hands to the image service to record. */
export interface CommitInput {
  configDigest: string;
  configBody: Buffer;
  /** manifests (and the index) to keep, by digest */
  manifests: Array<{ digest: string; body: Buffer }>;
  manifestDigest: string | null;
  layers: string[];
  diffIds: string[];
  tags: string[];
  repoDigests: string[];
}

export interface PullDeps {
  client: RegistryClient;
  layers: LayerStore;
  config: () => ImageSection;
  log: Logger;
  metrics: Metrics | null;
  /** records the image once every layer is in place */
  commit: (input: CommitInput) => Promise<ImageRecord>;
  /** keeps digests safe from garbage collection while a pull runs */
  hold: (digests: string[]) => () => void;
  /** a blob already in the store (a config pulled before), or null */
  localBlob: (digest: string) => Promise<Buffer | null>;
  /** after a failed pull: remove what it committed that no image needs */
  collect: () => Promise<void>;
}

interface Progress {
  name: string;
  done: number;
  total: number;
}

const PROGRESS_INTERVAL_MS = 5000;
const MAX_CONFIG = 8 * 1024 * 1024;

export class PullManager {
  private readonly inflight = new Map<string, Promise<ImageRecord>>();
  private readonly layerJobs = new Map<string, Promise<void>>();
  private readonly downloads: Semaphore;
  private readonly active = new Set<Progress>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: PullDeps) {
    this.downloads = new Semaphore(deps.config().maxConcurrentDownloads);
  }

  /** Pulls `text`; resolves with the image record. `signal` abandons the wait, not the shared pull. */
  async pull(text: string, creds: Credentials, signal: AbortSignal): Promise<ImageRecord> {
    const cfg = this.deps.config();
    const ref = parseReference(text, cfg);
    const key = `${formatReference(ref)}|${createHash('sha256').update(JSON.stringify(creds)).digest('hex')}`;
    let run = this.inflight.get(key);
    if (run === undefined) {
      run = this.run(ref, creds).finally(() => this.inflight.delete(key));
      this.inflight.set(key, run);
    }
    return raceAbort(run, signal);
  }

  private async run(ref: ImageReference, creds: Credentials): Promise<ImageRecord> {
    const cfg = this.deps.config();
    const name = formatReference(ref);
    const started = performance.now();
    const deadline = cfg.pullTimeout > 0 ? AbortSignal.timeout(cfg.pullTimeout * 1000) : new AbortController().signal;
    const progress: Progress = { name, done: 0, total: 0 };
    const state = { host: '' };
    this.track(progress, true);
    this.deps.log.info({ image: name }, `pulling ${name}`);
    try {
      const rec = await this.fromEndpoints(ref, creds, deadline, progress, state);
      const seconds = (performance.now() - started) / 1000;
      this.deps.metrics?.imagePulls.inc({ result: 'success' });
      this.deps.metrics?.imagePullDuration.observe(seconds);
      this.deps.log.info({ image: name, id: rec.id, bytes: progress.done, seconds }, `pulled ${name} as ${rec.id}`);
      return rec;
    } catch (e) {
      this.deps.metrics?.imagePulls.inc({ result: 'failure' });
      await this.deps.collect().catch((err: unknown) => this.deps.log.warn({ err }, 'garbage collection after a failed pull failed'));
      if (deadline.aborted) {
        throw new RuntimeError('deadline-exceeded', `pull of ${name}${state.host ? ` from registry ${state.host}` : ''} did not finish within pull_timeout (${cfg.pullTimeout} s)`);
      }
      throw e;
    } finally {
      this.track(progress, false);
    }
  }

  private async fromEndpoints(ref: ImageReference, creds: Credentials, signal: AbortSignal, progress: Progress, state: { host: string }): Promise<ImageRecord> {
    const endpoints = endpointsFor(ref, this.deps.config().registries);
    const failures: string[] = [];
    let last: RuntimeError | null = null;
    for (const ep of endpoints) {
      state.host = ep.host;
      try {
        return await this.fromEndpoint(ref, ep, creds, signal, progress);
      } catch (e) {
        if (signal.aborted || !(e instanceof RuntimeError)) throw e;
        last = e;
        failures.push(`${ep.mirror ? 'mirror' : 'registry'} ${ep.host}: ${e.message}`);
        if (endpoints.length > 1) this.deps.log.warn({ image: progress.name, endpoint: ep.host, err: e.message }, 'pull from endpoint failed; trying the next');
      }
    }
    if (last === null) throw new Error('no endpoints'); // endpointsFor never returns none
    if (endpoints.length === 1) throw last;
    throw new RuntimeError(last.kind, `pull of ${progress.name} failed on every endpoint: ${failures.join('; ')}`);
  }

  private async fromEndpoint(ref: ImageReference, ep: Endpoint, creds: Credentials, signal: AbortSignal, progress: Progress): Promise<ImageRecord> {
    const { client } = this.deps;
    const where = `${ep.host}/${ep.repository}`;
    const top = await client.getManifest(ep, creds, ref.digest ?? (ref.tag as string), signal);
    const topDigest = sha256(top.body);
    if (ref.digest !== null && topDigest !== ref.digest) throw new DigestMismatchError(`manifest ${where}@${ref.digest}`, ref.digest, topDigest);
    const manifests = [{ digest: topDigest, body: top.body }];
    let parsed = parseManifest(top.body, top.mediaType, `manifest of ${progress.name}`);
    let manifestDigest = topDigest;
    if (parsed.kind === 'index') {
      const chosen: Descriptor = selectPlatform(parsed.index, hostPlatform(), `the index of ${progress.name}`);
      const m = await client.getManifest(ep, creds, chosen.digest, signal);
      const got = sha256(m.body);
      if (got !== chosen.digest) throw new DigestMismatchError(`manifest ${where}@${chosen.digest}`, chosen.digest, got);
      parsed = parseManifest(m.body, m.mediaType, `manifest ${chosen.digest} of ${progress.name}`);
      if (parsed.kind !== 'manifest') throw invalidArgument(`the index of ${progress.name} points to another index; nested indexes are not supported`);
      manifests.push({ digest: got, body: m.body });
      manifestDigest = got;
    }
    const manifest = parsed.manifest;
    const cfgWhat = `config ${manifest.config.digest} of ${where}`;
    const fetchConfig = async (): Promise<Buffer> => {
      const res = await client.getBlob(ep, creds, manifest.config.digest, signal);
      try {
        return await readBody(res, MAX_CONFIG);
      } catch (e) {
        throw client.transport(ep, e, cfgWhat);
      }
    };
    const configBody = (await this.deps.localBlob(manifest.config.digest)) ?? (await fetchConfig());
    const cfgDigest = sha256(configBody);
    if (cfgDigest !== manifest.config.digest) throw new DigestMismatchError(cfgWhat, manifest.config.digest, cfgDigest);
    const config = parseConfig(configBody, cfgWhat);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length) {
      throw invalidArgument(`${cfgWhat} lists ${diffIds.length} layers but the manifest has ${manifest.layers.length}`);
    }
    const chain = chainIds(diffIds);
    const release = this.deps.hold([...chain, cfgDigest, ...manifests.map((m) => m.digest)]);
    try {
      const missing: number[] = [];
      for (let i = 0; i < chain.length; i++) if (!(await this.deps.layers.has(chain[i]))) missing.push(i);
      progress.total = missing.reduce((n, i) => n + manifest.layers[i].size, 0);
      // Wait for every layer even when one fails, so that nothing is still being written
      // when the failure is reported and collected.
      const results = await Promise.allSettled(
        missing.map((i) => this.ensureLayer(ep, creds, manifest.layers[i], diffIds[i], chain[i], i > 0 ? chain[i - 1] : null, signal, progress)),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const tag = tagged(ref);
      return await this.deps.commit({
        configDigest: cfgDigest,
        configBody,
        manifests,
        manifestDigest,
        layers: chain,
        diffIds,
        tags: tag === null ? [] : [tag],
        repoDigests: [`${repoName(ref)}@${topDigest}`],
      });
    } finally {
      release();
    }
  }

  /** Fetches and unpacks one layer unless it is present or already being fetched. */
  private async ensureLayer(
    ep: Endpoint,
    creds: Credentials,
    desc: Descriptor,
    diffId: string,
    chainId: string,
    parent: string | null,
    signal: AbortSignal,
    progress: Progress,
  ): Promise<void> {
    let job = this.layerJobs.get(chainId);
    if (job === undefined) {
      job = (async () => {
        if (await this.deps.layers.has(chainId)) return;
        const release = await this.downloads.acquire(signal);
        try {
          const what = `layer ${desc.digest} of ${ep.host}/${ep.repository}`;
          await this.deps.layers.create(chainId, diffId, parent, async (dir) => {
            const res = await this.deps.client.getBlob(ep, creds, desc.digest, signal);
            const r = await unpackLayerStream(res, { digest: desc.digest, size: desc.size, diffId, what }, dir, {
              signal,
              limits: layerLimits(this.deps.config()),
              onBytes: (n) => {
                progress.done += n;
                this.deps.metrics?.imagePullBytes.inc(n);
              },
              transportError: (e) => this.deps.client.transport(ep, e, what),
            });
            return { size: r.size, inodes: r.inodes, blobDigest: desc.digest, blobSize: r.compressedSize };
          });
        } finally {
          release();
        }
      })().finally(() => this.layerJobs.delete(chainId));
      this.layerJobs.set(chainId, job);
    }
    await job;
  }

  private track(p: Progress, on: boolean): void {
    if (on) this.active.add(p);
    else this.active.delete(p);
    if (this.active.size > 0 && this.timer === null) {
      this.timer = setInterval(() => {
        for (const a of this.active) {
          const mb = (n: number) => (n / 1e6).toFixed(1);
          this.deps.log.info({ image: a.name, bytesDone: a.done, bytesTotal: a.total }, `pulling ${a.name}: ${mb(a.done)} of ${mb(a.total)} MB`);
        }
      }, PROGRESS_INTERVAL_MS);
      this.timer.unref();
    } else if (this.active.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
