/**
 * Image references as kubelet and crictl send them (the docker/distribution grammar):
 * `[registry/]path[:tag][@algorithm:hex]`. Names without a registry go to the configured
 * default registry, and single-component names there to its default namespace, as CRI-O and
 * containerd do (`busybox` → `docker.io/library/busybox:latest`).
 */
import { invalidArgument } from '../domain/errors';

export interface ImageReference {
  /** e.g. "docker.io", "127.0.0.1:5000" */
  registry: string;
  /** e.g. "library/busybox" */
  repository: string;
  /** null when the reference names only a digest */
  tag: string | null;
  /** "sha256:<hex>" or null */
  digest: string | null;
}

export interface NameDefaults {
  defaultRegistry: string;
  defaultNamespace: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::\d+)?$/;

/** Whether `s` is a bare image id: 64 hex digits, with or without "sha256:". */
export function isImageId(s: string): boolean {
  return /^(?:sha256:)?[a-f0-9]{64}$/.test(s);
}

/** Whether the first path component names a registry rather than a repository namespace. */
function isDomain(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component !== component.toLowerCase();
}

/** Parses and normalizes `text`; throws invalid-argument naming the reference. */
export function parseReference(text: string, defaults: NameDefaults): ImageReference {
  const bad = (why: string) => invalidArgument(`invalid image reference ${JSON.stringify(text)}: ${why}`);
  if (text === '') throw bad('empty');
  if (text.length > 512) throw bad('too long');
  let rest = text;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`digest ${JSON.stringify(digest)} is not sha256:<64 hex digits>`);
  }
  let tag: string | null = null;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`tag ${JSON.stringify(tag)} is not valid`);
  }
  const parts = rest.split('/');
  let registry: string;
  if (parts.length > 1 && isDomain(parts[0])) {
    registry = parts.shift() as string;
    if (!DOMAIN.test(registry)) throw bad(`registry ${JSON.stringify(registry)} is not a host[:port]`);
  } else {
    registry = defaults.defaultRegistry;
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = 'docker.io';
  for (const p of parts) {
    if (!COMPONENT.test(p)) throw bad(`path component ${JSON.stringify(p)} must be lower-case letters, digits and separators`);
  }
  if (parts.length === 1 && registry === defaults.defaultRegistry && defaults.defaultNamespace !== '') {
    parts.unshift(...defaults.defaultNamespace.split('/'));
  }
  if (tag === null && digest === null) tag = 'latest';
  return { registry, repository: parts.join('/'), tag, digest };
}

/** "registry/repository" */
export function repoName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** "registry/repository:tag", or null when the reference has no tag. */
export function tagged(ref: ImageReference): string | null {
  return ref.tag === null ? null : `${repoName(ref)}:${ref.tag}`;
}

/** The full normalized form: name[:tag][@digest]. */
export function formatReference(ref: ImageReference): string {
  return repoName(ref) + (ref.tag !== null ? `:${ref.tag}` : '') + (ref.digest !== null ? `@${ref.digest}` : '');
}
