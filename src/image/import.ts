/**
 * Offline import of node images, with no network: an OCI image layout (a directory or a
 * tarball of one) or a `docker save` archive. An archive is read in place as data, never
 * extracted (see archive.ts); its layers go through the same verified unpack as pulled
 * ones, straight from the archive into the layer store.
 */
import fsp from 'node:fs/promises';
import { invalidArgument, notFound } from '../domain/errors';
import { ArchiveSource, dirSource, readSmall, type ImageSource, type SourceFile } from './archive';
import type { ImageRecord } from './image-store';
import type { Layout } from './layout';
import type { LayerStore } from './layer-store';
import { unpackLayerStream } from './layer-stream';
import type { LayerLimits } from './limits';
import { chainIds, DIGEST, DigestMismatchError, hostPlatform, parseConfig, parseManifest, selectPlatform, sha256, type Descriptor } from './manifest';
import type { CommitInput } from './pull';
import { parseReference, repoName, tagged, type NameDefaults } from './reference';

export interface ImportDeps {
  layout: Layout;
  layers: LayerStore;
  names: NameDefaults;
  commit: (input: CommitInput) => Promise<ImageRecord>;
  hold: (digests: string[]) => () => void;
  /** after a failed image: removes those of these new layers that no image needs */
  discard: (chainIds: string[]) => Promise<void>;
  /** how far layers, and a gzip'd archive, may decompress */
  limits: LayerLimits;
}

export interface ImportOptions {
  /** an extra tag for every image imported */
  tag: string | null;
  signal: AbortSignal;
}

interface DockerArchiveEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/** Manifests, configs and index.json: as pulls allow. */
const MAX_METADATA = 8 * 1024 * 1024;

/** Imports every image in `input`; returns their records. */
export async function importImages(deps: ImportDeps, input: string, opts: ImportOptions): Promise<ImageRecord[]> {
  const st = await fsp.stat(input).catch(() => null);
  if (st === null) throw notFound(`import source ${input} does not exist`);
  if (st.isDirectory()) return importFrom(deps, dirSource(input), opts);
  if (!st.isFile()) throw invalidArgument(`import source ${input} is neither a directory nor a file`);
  let scratch: string | null = null;
  try {
    const source = await ArchiveSource.open(input, {
      scratch: async () => (scratch = await deps.layout.scratch('import')),
      limits: deps.limits,
      signal: opts.signal,
    });
    return await importFrom(deps, source, opts);
  } finally {
    if (scratch !== null) await fsp.rm(scratch, { recursive: true, force: true });
  }
}

async function readJsonFile<T>(source: ImageSource, name: string, what: string): Promise<{ body: Buffer; value: T } | null> {
  const file = await source.file(name, what);
  if (file === null) return null;
  const body = await readSmall(file, MAX_METADATA, `${what} ${name}`);
  try {
    return { body, value: JSON.parse(body.toString('utf8')) as T };
  } catch (e) {
    throw invalidArgument(`${what} ${name} in ${source.name} is not valid JSON: ${(e as Error).message}`);
  }
}

async function importFrom(deps: ImportDeps, source: ImageSource, opts: ImportOptions): Promise<ImageRecord[]> {
  const docker = await readJsonFile<unknown>(source, 'manifest.json', 'docker archive manifest');
  if (docker !== null) return importDockerArchive(deps, source, docker.value, opts);
  const index = await source.file('index.json', 'OCI layout index');
  if (index !== null) return importOciLayout(deps, source, await readSmall(index, MAX_METADATA, `${source.name}/index.json`), opts);
  throw invalidArgument(`${source.name} is neither an OCI image layout (no index.json) nor a docker archive (no manifest.json)`);
}

/**
 * Unpacks and records one image: its layers in order (the new ones are removed again if it
 * fails), then its record.
 */
async function importImage(
  deps: ImportDeps,
  layers: Array<{ file: SourceFile; digest: string | null; size: number | null; what: string }>,
  diffIds: string[],
  hold: string[],
  signal: AbortSignal,
  record: (chain: string[]) => CommitInput,
): Promise<ImageRecord> {
  const chain = chainIds(diffIds);
  const release = deps.hold([...chain, ...hold]);
  const created: string[] = [];
  try {
    for (let i = 0; i < chain.length; i++) {
      if (await deps.layers.has(chain[i])) continue;
      const l = layers[i];
      await deps.layers.create(chain[i], diffIds[i], i > 0 ? chain[i - 1] : null, async (dest) => {
        const r = await unpackLayerStream(l.file.open(), { digest: l.digest, size: l.size, diffId: diffIds[i], what: l.what }, dest, {
          signal,
          limits: deps.limits,
          sourceSize: l.file.size,
        });
        return { size: r.size, inodes: r.inodes, blobDigest: l.digest, blobSize: r.compressedSize };
      });
      created.push(chain[i]);
    }
    return await deps.commit(record(chain));
  } catch (e) {
    release();
    // The failure is what the caller needs; the collection at daemon start takes what this leaves.
    await deps.discard(created).catch(() => undefined);
    throw e;
  } finally {
    release();
  }
}

function normalizedTag(deps: ImportDeps, text: string): string {
  const t = tagged(parseReference(text, deps.names));
  if (t === null) throw invalidArgument(`tag ${JSON.stringify(text)} names a digest, not a tag`);
  return t;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

async function importDockerArchive(deps: ImportDeps, source: ImageSource, value: unknown, opts: ImportOptions): Promise<ImageRecord[]> {
  const what = `${source.name}/manifest.json`;
  if (!Array.isArray(value) || value.length === 0) throw invalidArgument(`${what} lists no images`);
  const entries = value.map((e: Partial<Record<keyof DockerArchiveEntry, unknown>> | null, i): DockerArchiveEntry => {
    if (typeof e !== 'object' || e === null || typeof e.Config !== 'string' || !isStringArray(e.Layers) || !(e.RepoTags == null || isStringArray(e.RepoTags))) {
      throw invalidArgument(`${what}: entry ${i} needs Config (a name), Layers (names) and RepoTags (tags or null)`);
    }
    return { Config: e.Config, Layers: e.Layers, RepoTags: e.RepoTags ?? null };
  });
  const out: ImageRecord[] = [];
  for (const e of entries) {
    const cfg = await readJsonFile<unknown>(source, e.Config, 'config');
    if (cfg === null) throw notFound(`config ${e.Config} is missing from ${source.name}`);
    const configBody = cfg.body;
    const configDigest = sha256(configBody);
    const config = parseConfig(configBody, `config ${e.Config}`);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== e.Layers.length) throw invalidArgument(`config ${e.Config} lists ${diffIds.length} layers but manifest.json has ${e.Layers.length}`);
    // Every layer is found before any is unpacked.
    const layers = [];
    for (const name of e.Layers) {
      const file = await source.file(name, `layer ${name}`);
      if (file === null) throw notFound(`layer ${name} is missing from ${source.name}`);
      // Newer archives name layers by their blob digest: check it when they do.
      const m = /(?:^|\/)blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
      layers.push({ file, digest: m ? `sha256:${m[1]}` : null, size: null, what: `layer ${name}` });
    }
    const tags = e.RepoTags?.map((t) => normalizedTag(deps, t)) ?? [];
    if (opts.tag) tags.push(normalizedTag(deps, opts.tag));
    out.push(
      await importImage(deps, layers, diffIds, [configDigest], opts.signal, (chain) => ({
        configDigest,
        configBody,
        manifests: [],
        manifestDigest: null,
        layers: chain,
        diffIds,
        tags,
        repoDigests: [],
      })),
    );
  }
  return out;
}

async function blobFile(source: ImageSource, digest: string, what: string): Promise<SourceFile> {
  if (!DIGEST.test(digest)) throw invalidArgument(`${what} has a bad digest ${JSON.stringify(digest)}`);
  const file = await source.file(`blobs/sha256/${digest.slice(7)}`, `${what}: blob ${digest}`);
  if (file === null) throw notFound(`${what}: blob ${digest} is missing from ${source.name}`);
  return file;
}

async function readBlob(source: ImageSource, digest: string, what: string): Promise<Buffer> {
  const body = await readSmall(await blobFile(source, digest, what), MAX_METADATA, `${what}: blob ${digest}`);
  const got = sha256(body);
  if (got !== digest) throw new DigestMismatchError(`${what} (blob ${digest})`, digest, got);
  return body;
}

async function importOciLayout(deps: ImportDeps, source: ImageSource, indexBody: Buffer, opts: ImportOptions): Promise<ImageRecord[]> {
  const index = parseManifest(indexBody, '', `${source.name}/index.json`);
  if (index.kind !== 'index') throw invalidArgument(`${source.name}/index.json is not an image index`);
  const out: ImageRecord[] = [];
  for (const top of index.index.manifests) {
    const topBody = await readBlob(source, top.digest, 'index.json entry');
    const manifests = [{ digest: top.digest, body: topBody }];
    let parsed = parseManifest(topBody, top.mediaType, `manifest ${top.digest}`);
    let manifestDigest = top.digest;
    if (parsed.kind === 'index') {
      const chosen: Descriptor = selectPlatform(parsed.index, hostPlatform(), `index ${top.digest}`);
      const body = await readBlob(source, chosen.digest, `index ${top.digest}`);
      parsed = parseManifest(body, chosen.mediaType, `manifest ${chosen.digest}`);
      if (parsed.kind !== 'manifest') throw invalidArgument(`index ${top.digest} points to another index; nested indexes are not supported`);
      manifests.push({ digest: chosen.digest, body });
      manifestDigest = chosen.digest;
    }
    const manifest = parsed.manifest;
    const configBody = await readBlob(source, manifest.config.digest, `manifest ${manifestDigest}`);
    const config = parseConfig(configBody, `config ${manifest.config.digest}`);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length)
      throw invalidArgument(`config ${manifest.config.digest} lists ${diffIds.length} layers but the manifest has ${manifest.layers.length}`);
    const layers = [];
    for (const l of manifest.layers) {
      const file = await blobFile(source, l.digest, `manifest ${manifestDigest}`);
      if (file.size !== l.size) throw invalidArgument(`layer ${l.digest} has ${file.size} bytes in ${source.name} where manifest ${manifestDigest} says ${l.size}`);
      layers.push({ file, digest: l.digest, size: l.size, what: `layer ${l.digest}` });
    }
    // The name: containerd's full-name annotation, or an OCI ref.name that is a full reference.
    const ann = top.annotations ?? {};
    const name = ann['io.containerd.image.name'] ?? (/[/:]/.test(ann['org.opencontainers.image.ref.name'] ?? '') ? ann['org.opencontainers.image.ref.name'] : null);
    const tags: string[] = [];
    const repoDigests: string[] = [];
    if (name) {
      const ref = parseReference(name, deps.names);
      const t = tagged(ref);
      if (t) tags.push(t);
      repoDigests.push(`${repoName(ref)}@${top.digest}`);
    }
    if (opts.tag) tags.push(normalizedTag(deps, opts.tag));
    out.push(
      await importImage(deps, layers, diffIds, [manifest.config.digest, ...manifests.map((m) => m.digest)], opts.signal, (chain) => ({
        configDigest: manifest.config.digest,
        configBody,
        manifests,
        manifestDigest,
        layers: chain,
        diffIds,
        tags,
        repoDigests,
      })),
    );
  }
  return out;
}
