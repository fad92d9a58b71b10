/**
 * Test images built from Debian's busybox-static: layers as tar entries (with whiteouts,
 * opaque dirs, symlinks, hard links, users in /etc/passwd), OCI or Docker manifests, indexes,
 * OCI layouts and docker-archives, and a push through the distribution API (monolithic or
 * chunked uploads) with optional basic auth. Everything is deterministic: the same call
 * gives the same digests.
 */
import { staticBusybox } from './busybox';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { buildTar, TAR_END, tarHeader, tarPadding, type TarWriteEntry } from '../../src/image/tar';

export type LayerEntries = Array<TarWriteEntry & { data?: Buffer }>;

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface BuiltLayer {
  blob: Buffer;
  digest: string;
  diffId: string;
  mediaType: string;
}

export interface BuiltImage {
  layers: BuiltLayer[];
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  manifestMediaType: string;
}

const MTIME = 1_677_628_800; // 2023-03-01

/** The base layer: busybox with a few applets as hard links and symlinks, users and groups. */
export function busyboxLayer(): LayerEntries {
  const busybox = fs.readFileSync(staticBusybox);
  const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
  const group = 'root:x:0:\napp:x:1000:\nnogroup:x:65534:\n';
  const e: LayerEntries = [
    { name: 'bin/', type: 'directory', mode: 0o755, mtime: MTIME },
    { name: 'bin/busybox', type: 'file', mode: 0o755, mtime: MTIME, data: busybox },
    { name: 'bin/sh', type: 'link', linkname: 'bin/busybox', mtime: MTIME },
    { name: 'etc/', type: 'directory', mode: 0o755, mtime: MTIME },
    { name: 'etc/passwd', type: 'file', mode: 0o644, mtime: MTIME, data: Buffer.from(passwd) },
    { name: 'etc/group', type: 'file', mode: 0o644, mtime: MTIME, data: Buffer.from(group) },
    { name: 'home/', type: 'directory', mode: 0o755, mtime: MTIME },
    { name: 'home/app/', type: 'directory', mode: 0o750, uid: 1000, gid: 1000, mtime: MTIME },
    { name: 'tmp/', type: 'directory', mode: 0o1777, mtime: MTIME },
    { name: 'usr/', type: 'directory', mode: 0o755, mtime: MTIME },
    { name: 'usr/bin/', type: 'directory', mode: 0o755, mtime: MTIME },
  ];
  for (const applet of ['ls', 'cat', 'echo', 'sleep', 'id']) e.push({ name: `bin/${applet}`, type: 'link', linkname: 'bin/busybox', mtime: MTIME });
  e.push({ name: 'usr/bin/env', type: 'symlink', linkname: '/bin/busybox', mtime: MTIME });
  return e;
}

/** A small layer of text files: `files` maps path → content. */
export function filesLayer(files: Record<string, string>): LayerEntries {
  return Object.entries(files).map(([name, text]) => ({ name, type: 'file', mode: 0o644, mtime: MTIME, data: Buffer.from(text) }));
}

/** `n` bytes that do not compress (a seeded stream of sha256 blocks). */
export function noise(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < n; off += 32) {
    block.copy(out, off, 0, Math.min(32, n - off));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export interface BuildOptions {
  /** gzip layers (default true) */
  gzip?: boolean;
  /** docker schema 2 media types instead of OCI */
  docker?: boolean;
  architecture?: string;
  /** the config's `config` object */
  runConfig?: Record<string, unknown>;
}

export function buildLayer(entries: LayerEntries, gzip = true, docker = false): BuiltLayer {
  const tar = buildTar(entries);
  const blob = gzip ? zlib.gzipSync(tar, { level: 1 }) : tar;
  const mediaType = docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar';
  return { blob, digest: sha256(blob), diffId: sha256(tar), mediaType };
}

export function buildImage(layers: LayerEntries[], opts: BuildOptions = {}): BuiltImage {
  return assembleImage(
    layers.map((l) => buildLayer(l, opts.gzip ?? true, opts.docker ?? false)),
    opts,
  );
}

export function assembleImage(built: BuiltLayer[], opts: BuildOptions = {}): BuiltImage {
  const config = Buffer.from(
    JSON.stringify({
      architecture: opts.architecture ?? 'amd64',
      os: 'linux',
      created: '2023-03-01T00:00:00Z',
      config: opts.runConfig ?? {
        User: '1000:1000',
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello'],
        Cmd: ['/bin/sh'],
        WorkingDir: '/home/app',
        StopSignal: 'SIGTERM',
        Labels: { 'org.example.test': 'yes' },
      },
      rootfs: { type: 'layers', diff_ids: built.map((l) => l.diffId) },
    }),
  );
  const manifestMediaType = opts.docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestMediaType,
      config: {
        mediaType: opts.docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: built.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length })),
    }),
  );
  return { layers: built, config, configDigest: sha256(config), manifest, manifestDigest: sha256(manifest), manifestMediaType };
}

export interface BuiltIndex {
  body: Buffer;
  digest: string;
  mediaType: string;
}

export function buildIndex(entries: Array<{ image: BuiltImage; architecture: string; variant?: string }>): BuiltIndex {
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: entries.map((e) => ({
        mediaType: e.image.manifestMediaType,
        digest: e.image.manifestDigest,
        size: e.image.manifest.length,
        platform: { os: 'linux', architecture: e.architecture, ...(e.variant ? { variant: e.variant } : {}) },
      })),
    }),
  );
  return { body, digest: sha256(body), mediaType: 'application/vnd.oci.image.index.v1+json' };
}

// ---- pushing ----

export interface PushOptions {
  auth?: { username: string; password: string } | null;
  /** upload blobs in 64 KiB PATCH chunks instead of one PUT */
  chunked?: boolean;
}

function headersFor(opts: PushOptions): Record<string, string> {
  return opts.auth ? { authorization: `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}` } : {};
}

async function ok(res: Response, what: string): Promise<Response> {
  if (!res.ok) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  return res;
}

function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

export async function pushBlob(host: string, repo: string, blob: Buffer, opts: PushOptions = {}): Promise<string> {
  const digest = sha256(blob);
  const base = `http://${host}`;
  const h = headersFor(opts);
  if ((await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: h })).status === 200) return digest;
  const start = await ok(await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: h }), `start upload of ${digest}`);
  let location = new URL(start.headers.get('location') as string, base).toString();
  if (opts.chunked) {
    const size = 64 * 1024;
    for (let off = 0; off < blob.length; off += size) {
      const part = blob.subarray(off, off + size);
      const res = await ok(
        await fetch(location, {
          method: 'PATCH',
          headers: { ...h, 'content-type': 'application/octet-stream', 'content-range': `${off}-${off + part.length - 1}` },
          body: part,
        }),
        `upload chunk of ${digest}`,
      );
      location = new URL(res.headers.get('location') as string, base).toString();
    }
    await ok(await fetch(withDigest(location, digest), { method: 'PUT', headers: h }), `finish upload of ${digest}`);
  } else {
    await ok(await fetch(withDigest(location, digest), { method: 'PUT', headers: { ...h, 'content-type': 'application/octet-stream' }, body: blob }), `upload of ${digest}`);
  }
  return digest;
}

export async function pushManifest(host: string, repo: string, reference: string, body: Buffer, mediaType: string, opts: PushOptions = {}): Promise<void> {
  await ok(
    await fetch(`http://${host}/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers: { ...headersFor(opts), 'content-type': mediaType }, body }),
    `push of manifest ${repo}:${reference}`,
  );
}

/** Pushes the image's blobs and its manifest, under `tag` (or only by digest when null). */
export async function pushImage(host: string, repo: string, tag: string | null, img: BuiltImage, opts: PushOptions = {}): Promise<void> {
  for (const l of img.layers) await pushBlob(host, repo, l.blob, opts);
  await pushBlob(host, repo, img.config, opts);
  await pushManifest(host, repo, tag ?? img.manifestDigest, img.manifest, img.manifestMediaType, opts);
}

export async function pushIndex(host: string, repo: string, tag: string, index: BuiltIndex, images: BuiltImage[], opts: PushOptions = {}): Promise<void> {
  for (const img of images) await pushImage(host, repo, null, img, opts);
  await pushManifest(host, repo, tag, index.body, index.mediaType, opts);
}

// ---- archives ----

/** Writes an OCI image layout of `img` to `dir`, its index entry named `refName`. */
export function writeOciLayout(dir: string, img: BuiltImage, refName: string): void {
  const blobs = path.join(dir, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer) => fs.writeFileSync(path.join(blobs, sha256(b).slice(7)), b);
  for (const l of img.layers) put(l.blob);
  put(img.config);
  put(img.manifest);
  fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: img.manifestMediaType, digest: img.manifestDigest, size: img.manifest.length, annotations: { 'org.opencontainers.image.ref.name': refName } }],
    }),
  );
}

/** A tar of every file under `dir` (relative names). */
export function tarOfDir(dir: string): Buffer {
  return buildTar(dirEntries(dir));
}

/** Tar entries for every dir and file under `dir` (relative names), to mix with others. */
export function dirEntries(dir: string): LayerEntries {
  const entries: LayerEntries = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        entries.push({ name: `${r}/`, type: 'directory' });
        walk(r);
      } else entries.push({ name: r, type: 'file', data: fs.readFileSync(path.join(dir, r)) });
    }
  };
  walk('');
  return entries;
}

/** A `docker save` archive (the classic format: <id>/layer.tar, <config>.json, manifest.json). */
export function dockerArchive(img: BuiltImage, repoTags: string[]): Buffer {
  const entries: LayerEntries = [];
  const layerNames: string[] = [];
  img.layers.forEach((l, i) => {
    const id = createHash('sha256').update(`layer${i}${l.diffId}`).digest('hex');
    const tar = l.blob[0] === 0x1f ? zlib.gunzipSync(l.blob) : l.blob;
    entries.push({ name: `${id}/`, type: 'directory' }, { name: `${id}/layer.tar`, type: 'file', data: tar }, { name: `${id}/VERSION`, type: 'file', data: Buffer.from('1.0') });
    layerNames.push(`${id}/layer.tar`);
  });
  const configName = `${img.configDigest.slice(7)}.json`;
  entries.push({ name: configName, type: 'file', data: img.config });
  entries.push({ name: 'manifest.json', type: 'file', data: Buffer.from(JSON.stringify([{ Config: configName, RepoTags: repoTags, Layers: layerNames }])) });
  return buildTar(entries);
}

// ---- decompression bombs ----

const ZEROS_MEMBER = 16 << 20;
let zerosMember: Buffer | null = null;

/**
 * `head`, then `zeros` bytes of zeros (a multiple of 16 MiB), then `tail`, as one gzip
 * stream made of concatenated members (valid gzip, read as one by every gunzip): 16 MiB of
 * zeros is one ~16 KiB member repeated, so a 1 GiB stream costs ~1 MiB and no big buffer.
 * The uncompressed bytes are hashed as they are described, without being materialized.
 */
export function gzipWithZeros(head: Buffer, zeros: number, tail: Buffer): { blob: Buffer; rawDigest: string } {
  if (zeros % ZEROS_MEMBER !== 0) throw new Error(`zeros must be a multiple of ${ZEROS_MEMBER}`);
  zerosMember ??= zlib.gzipSync(Buffer.alloc(ZEROS_MEMBER), { level: 9 });
  const hash = createHash('sha256').update(head);
  const zero = Buffer.alloc(ZEROS_MEMBER);
  const parts: Buffer[] = [zlib.gzipSync(head)];
  for (let n = 0; n < zeros; n += ZEROS_MEMBER) {
    parts.push(zerosMember);
    hash.update(zero);
  }
  hash.update(tail);
  parts.push(zlib.gzipSync(tail));
  return { blob: Buffer.concat(parts), rawDigest: `sha256:${hash.digest('hex')}` };
}

/**
 * A gzip layer whose tar holds `before` entries and then one file `name` of `bytes` zeros:
 * a decompression bomb (1 GiB is ~1 MiB compressed), with its true diff ID, so that a
 * runtime that does not refuse it unpacks it whole.
 */
export function zerosBombLayer(bytes: number, before: LayerEntries = [], name = 'zeros'): BuiltLayer {
  const head = Buffer.concat([buildTar(before).subarray(0, -TAR_END.length), tarHeader({ name, type: 'file', mode: 0o644, size: bytes, mtime: MTIME })]);
  const { blob, rawDigest } = gzipWithZeros(head, bytes, Buffer.concat([tarPadding(bytes), TAR_END]));
  return { blob, digest: sha256(blob), diffId: rawDigest, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' };
}
