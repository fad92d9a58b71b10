/**
 * Image manifests, indexes and configs: Docker schema 2 and OCI, parsed and checked, and the
 * platform choice in an index (linux, this machine's architecture and variant), as
 * containerd's default platform matcher does.
 */
import { createHash } from 'node:crypto';
import { invalidArgument, notFound, RuntimeError } from '../domain/errors';

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.dockerList, MediaType.ociManifest, MediaType.dockerManifest].join(', ');

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface ImageManifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

/** The OCI image config (the fields the runtime uses). */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  created?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    StopSignal?: string;
    ExposedPorts?: Record<string, unknown>;
    Volumes?: Record<string, unknown>;
    Labels?: Record<string, string> | null;
  };
  rootfs: { type: string; diff_ids: string[] };
  history?: unknown[];
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export const DIGEST = /^sha256:[a-f0-9]{64}$/;

export type Parsed = { kind: 'index'; index: ImageIndex } | { kind: 'manifest'; manifest: ImageManifest };

/** Parses a manifest body; `what` names it in errors. */
export function parseManifest(body: Buffer, contentType: string, what: string): Parsed {
  let doc: { schemaVersion?: number; mediaType?: string; manifests?: unknown; layers?: unknown; config?: unknown };
  try {
    doc = JSON.parse(body.toString('utf8')) as typeof doc;
  } catch {
    throw invalidArgument(`${what} is not valid JSON`);
  }
  const mediaType = doc.mediaType ?? contentType;
  if (doc.schemaVersion === 1 || mediaType === MediaType.dockerSchema1 || mediaType === 'application/vnd.docker.distribution.manifest.v1+json') {
    throw invalidArgument(`${what} is a docker schema 1 manifest, which is not supported`);
  }
  if (Array.isArray(doc.manifests)) {
    const index = doc as ImageIndex;
    for (const m of index.manifests) checkDescriptor(m, what);
    return { kind: 'index', index };
  }
  if (Array.isArray(doc.layers) && typeof doc.config === 'object' && doc.config !== null) {
    const manifest = doc as ImageManifest;
    checkDescriptor(manifest.config, what);
    for (const l of manifest.layers) checkDescriptor(l, what);
    return { kind: 'manifest', manifest };
  }
  throw invalidArgument(`${what} is neither an image manifest nor an index (media type ${JSON.stringify(mediaType)})`);
}

function checkDescriptor(d: Descriptor, what: string): void {
  if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || !DIGEST.test(d.digest) || typeof d.size !== 'number') {
    throw invalidArgument(`${what} has a bad descriptor ${JSON.stringify(d)}`);
  }
}

/** This machine as an OCI platform (node's arch names → GOARCH). */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const architecture = arch[process.arch] ?? process.arch;
  const variant = architecture === 'arm64' ? 'v8' : architecture === 'arm' ? `v${(process.config.variables as { arm_version?: string }).arm_version ?? '7'}` : undefined;
  return { os: 'linux', architecture, ...(variant ? { variant } : {}) };
}

/** The manifest of `index` for `platform`: exact variant first, then any variant. */
export function selectPlatform(index: ImageIndex, platform: Platform, what: string): Descriptor {
  const candidates = index.manifests.filter((m) => m.platform && m.platform.os === platform.os && m.platform.architecture === platform.architecture);
  const want = platform.variant ?? '';
  const exact = candidates.find((m) => (m.platform?.variant ?? (platform.architecture === 'arm64' ? 'v8' : '')) === want);
  const chosen = exact ?? candidates[0];
  if (!chosen) {
    const have = index.manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}` : '?')).join(', ');
    throw notFound(`${what} has no image for ${platform.os}/${platform.architecture} (it has ${have || 'none'})`);
  }
  return chosen;
}

/** Checks a config blob; `what` names it in errors. */
export function parseConfig(body: Buffer, what: string): ImageConfig {
  let cfg: ImageConfig;
  try {
    cfg = JSON.parse(body.toString('utf8')) as ImageConfig;
  } catch {
    throw invalidArgument(`${what} is not valid JSON`);
  }
  if (!cfg.rootfs || !Array.isArray(cfg.rootfs.diff_ids) || !cfg.rootfs.diff_ids.every((d) => DIGEST.test(d))) {
    throw invalidArgument(`${what} has no valid rootfs.diff_ids`);
  }
  return cfg;
}

/** Chain IDs of a layer stack, bottom first (the OCI image spec's ChainID). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  return out;
}

export class DigestMismatchError extends RuntimeError {
  constructor(what: string, expected: string, actual: string) {
    super('failed-precondition', `digest mismatch for ${what}: expected ${expected}, got ${actual}`);
  }
}
