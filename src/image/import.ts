/**
 * Offline import of node images, with no network: an OCI image layout (a directory or a
 * tarball of one) or a `docker save` archive. Archives are first unpacked as plain files
 * into scratch space; the layers then go through the same verified unpack as pulled ones.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { invalidArgument, notFound } from '../domain/errors';
import { exists, readJson } from './fsutil';
import type { ImageRecord } from './image-store';
import type { Layout } from './layout';
import type { LayerStore } from './layer-store';
import { unpackLayerStream } from './layer-stream';
import { chainIds, DIGEST, DigestMismatchError, hostPlatform, parseConfig, parseManifest, selectPlatform, sha256, type Descriptor } from './manifest';
import type { CommitInput } from './pull';
import { parseReference, repoName, tagged, type NameDefaults } from './reference';
import { readTar } from './tar';

export interface ImportDeps {
  layout: Layout;
  layers: LayerStore;
  names: NameDefaults;
  commit: (input: CommitInput) => Promise<ImageRecord>;
  hold: (digests: string[]) => () => void;
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

/** Imports every image in `input`; returns their records. */
export async function importImages(deps: ImportDeps, input: string, opts: ImportOptions): Promise<ImageRecord[]> {
  const st = await fsp.stat(input).catch(() => null);
  if (st === null) throw notFound(`import source ${input} does not exist`);
  if (st.isDirectory()) return importDir(deps, input, opts);
  const scratch = await deps.layout.scratch('import');
  try {
    await extractArchive(input, scratch, opts.signal);
    return await importDir(deps, scratch, opts);
  } finally {
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}

/** A path inside `dir` named by the archive; refuses names that leave it. */
function inside(dir: string, name: string, what: string): string {
  const p = path.resolve(dir, name);
  if (p !== dir && !p.startsWith(`${dir}/`)) throw invalidArgument(`${what} ${JSON.stringify(name)} points outside the archive`);
  return p;
}

/** Plain extraction of an archive (tar, or gzip'd tar): files, dirs, and symlinks that stay inside. */
async function extractArchive(file: string, dest: string, signal: AbortSignal): Promise<void> {
  const head = Buffer.alloc(2);
  const fh = await fsp.open(file, 'r');
  await fh.read(head, 0, 2, 0).finally(() => fh.close());
  const gz = head[0] === 0x1f && head[1] === 0x8b;
  const source: Readable = gz ? fs.createReadStream(file).pipe(zlib.createGunzip()) : fs.createReadStream(file);
  for await (const { header, body } of readTar(source)) {
    signal.throwIfAborted();
    const p = inside(dest, header.name, 'archive entry');
    if (p === dest) continue;
    await fsp.mkdir(path.dirname(p), { recursive: true });
    if (header.type === 'directory') await fsp.mkdir(p, { recursive: true });
    else if (header.type === 'file') await pipeline(Readable.from(body), fs.createWriteStream(p, { flags: 'wx' }));
    else if (header.type === 'symlink') {
      inside(dest, path.join(path.dirname(header.name), header.linkname), 'archive symlink');
      await fsp.symlink(header.linkname, p);
    } else if (header.type === 'link') await fsp.link(inside(dest, header.linkname, 'archive hard link'), p);
  }
}

async function importDir(deps: ImportDeps, dir: string, opts: ImportOptions): Promise<ImageRecord[]> {
  if (await exists(path.join(dir, 'manifest.json'))) return importDockerArchive(deps, dir, opts);
  if (await exists(path.join(dir, 'index.json'))) return importOciLayout(deps, dir, opts);
  throw invalidArgument(`${dir} is neither an OCI image layout (no index.json) nor a docker archive (no manifest.json)`);
}

function normalizedTag(deps: ImportDeps, text: string): string {
  const t = tagged(parseReference(text, deps.names));
  if (t === null) throw invalidArgument(`tag ${JSON.stringify(text)} names a digest, not a tag`);
  return t;
}

async function importDockerArchive(deps: ImportDeps, dir: string, opts: ImportOptions): Promise<ImageRecord[]> {
  const entries = await readJson<DockerArchiveEntry[]>(path.join(dir, 'manifest.json'));
  if (!Array.isArray(entries) || entries.length === 0) throw invalidArgument(`${dir}/manifest.json lists no images`);
  const out: ImageRecord[] = [];
  for (const e of entries) {
    const configBody = await fsp.readFile(inside(dir, e.Config, 'config'));
    const configDigest = sha256(configBody);
    const config = parseConfig(configBody, `config ${e.Config}`);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== e.Layers.length) throw invalidArgument(`config ${e.Config} lists ${diffIds.length} layers but manifest.json has ${e.Layers.length}`);
    const chain = chainIds(diffIds);
    const release = deps.hold([...chain, configDigest]);
    try {
      for (let i = 0; i < chain.length; i++) {
        const file = inside(dir, e.Layers[i], 'layer');
        // Newer archives name layers by their blob digest: check it when they do.
        const m = /blobs\/sha256\/([a-f0-9]{64})$/.exec(e.Layers[i]);
        await ensureLayer(deps, file, m ? `sha256:${m[1]}` : null, null, diffIds[i], chain[i], i > 0 ? chain[i - 1] : null, `layer ${e.Layers[i]}`, opts.signal);
      }
      const tags = (e.RepoTags ?? []).map((t) => normalizedTag(deps, t));
      if (opts.tag) tags.push(normalizedTag(deps, opts.tag));
      out.push(await deps.commit({ configDigest, configBody, manifests: [], manifestDigest: null, layers: chain, diffIds, tags, repoDigests: [] }));
    } finally {
      release();
    }
  }
  return out;
}

async function readBlob(dir: string, digest: string, what: string): Promise<Buffer> {
  if (!DIGEST.test(digest)) throw invalidArgument(`${what} has a bad digest ${JSON.stringify(digest)}`);
  const body = await fsp.readFile(path.join(dir, 'blobs', 'sha256', digest.slice(7))).catch(() => null);
  if (body === null) throw notFound(`${what}: blob ${digest} is missing from the layout`);
  const got = sha256(body);
  if (got !== digest) throw new DigestMismatchError(`${what} (blob ${digest})`, digest, got);
  return body;
}

async function importOciLayout(deps: ImportDeps, dir: string, opts: ImportOptions): Promise<ImageRecord[]> {
  const index = parseManifest(await fsp.readFile(path.join(dir, 'index.json')), '', `${dir}/index.json`);
  if (index.kind !== 'index') throw invalidArgument(`${dir}/index.json is not an image index`);
  const out: ImageRecord[] = [];
  for (const top of index.index.manifests) {
    const topBody = await readBlob(dir, top.digest, 'index.json entry');
    const manifests = [{ digest: top.digest, body: topBody }];
    let parsed = parseManifest(topBody, top.mediaType, `manifest ${top.digest}`);
    let manifestDigest = top.digest;
    if (parsed.kind === 'index') {
      const chosen: Descriptor = selectPlatform(parsed.index, hostPlatform(), `index ${top.digest}`);
      const body = await readBlob(dir, chosen.digest, `index ${top.digest}`);
      parsed = parseManifest(body, chosen.mediaType, `manifest ${chosen.digest}`);
      if (parsed.kind !== 'manifest') throw invalidArgument(`index ${top.digest} points to another index; nested indexes are not supported`);
      manifests.push({ digest: chosen.digest, body });
      manifestDigest = chosen.digest;
    }
    const manifest = parsed.manifest;
    const configBody = await readBlob(dir, manifest.config.digest, `manifest ${manifestDigest}`);
    const config = parseConfig(configBody, `config ${manifest.config.digest}`);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length) throw invalidArgument(`config ${manifest.config.digest} lists ${diffIds.length} layers but the manifest has ${manifest.layers.length}`);
    const chain = chainIds(diffIds);
    const release = deps.hold([...chain, manifest.config.digest, ...manifests.map((m) => m.digest)]);
    try {
      for (let i = 0; i < chain.length; i++) {
        const l = manifest.layers[i];
        if (!DIGEST.test(l.digest)) throw invalidArgument(`manifest ${manifestDigest} has a bad layer digest`);
        await ensureLayer(deps, path.join(dir, 'blobs', 'sha256', l.digest.slice(7)), l.digest, l.size, diffIds[i], chain[i], i > 0 ? chain[i - 1] : null, `layer ${l.digest}`, opts.signal);
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
      out.push(await deps.commit({ configDigest: manifest.config.digest, configBody, manifests, manifestDigest, layers: chain, diffIds, tags, repoDigests }));
    } finally {
      release();
    }
  }
  return out;
}

async function ensureLayer(deps: ImportDeps, file: string, digest: string | null, size: number | null, diffId: string, chainId: string, parent: string | null, what: string, signal: AbortSignal): Promise<void> {
  if (await deps.layers.has(chainId)) return;
  if (!(await exists(file))) throw notFound(`${what} is missing from the archive`);
  await deps.layers.create(chainId, diffId, parent, async (dest) => {
    const r = await unpackLayerStream(fs.createReadStream(file), { digest, size, diffId, what }, dest, { signal });
    return { size: r.size, inodes: r.inodes, blobDigest: digest, blobSize: r.compressedSize };
  });
}
