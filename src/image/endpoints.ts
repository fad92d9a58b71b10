/**
 * Where a reference is pulled from, per the `[[image.registries]]` entries (the
 * containers-registries.conf v2 shape): the entry with the longest matching prefix rewrites
 * the reference to its `location`; its mirrors are tried in order, then the location itself
 * unless the entry is `blocked` (mirrors only, no fallback). Plain http only where an entry
 * or mirror says `insecure`.
 */
import type { RegistryConfig } from '../config';
import { failedPrecondition } from '../domain/errors';
import { repoName, type ImageReference } from './reference';

export interface Endpoint {
  /** host[:port] contacted, e.g. "registry-1.docker.io", "127.0.0.1:5000" */
  host: string;
  /** the repository path on that host */
  repository: string;
  /** plain http (and unverified tls) allowed */
  insecure: boolean;
  /** true for a mirror, false for the registry itself */
  mirror: boolean;
}

/** Whether `name` (registry/repo) starts with `prefix` at a path-component boundary. */
function matches(prefix: string, name: string): boolean {
  return name === prefix || name.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`);
}

/** "docker.io" is an alias; its API lives on registry-1.docker.io. */
function apiHost(host: string): string {
  return host === 'docker.io' ? 'registry-1.docker.io' : host;
}

function split(location: string): { host: string; path: string } {
  const slash = location.indexOf('/');
  return slash < 0 ? { host: location, path: '' } : { host: location.slice(0, slash), path: location.slice(slash + 1) };
}

function rewrite(location: string, remainder: string, insecure: boolean, mirror: boolean): Endpoint {
  const { host, path } = split(location);
  const repository = [path, remainder].filter((s) => s !== '').join('/');
  return { host: apiHost(host), repository, insecure, mirror };
}

/** The registry entry that applies to `ref`, or null. */
export function registryFor(ref: ImageReference, registries: RegistryConfig[]): RegistryConfig | null {
  const name = repoName(ref);
  let best: RegistryConfig | null = null;
  let bestLen = -1;
  for (const r of registries) {
    const prefix = r.prefix ?? r.location;
    if (matches(prefix, name) && prefix.length > bestLen) {
      best = r;
      bestLen = prefix.length;
    }
  }
  return best;
}

/** The endpoints to try for `ref`, in order. Throws failed-precondition when none may be. */
export function endpointsFor(ref: ImageReference, registries: RegistryConfig[]): Endpoint[] {
  const name = repoName(ref);
  const entry = registryFor(ref, registries);
  if (entry === null) return [{ host: apiHost(ref.registry), repository: ref.repository, insecure: false, mirror: false }];
  const prefix = entry.prefix ?? entry.location;
  const remainder = name.slice(prefix.length).replace(/^\//, '');
  const out = entry.mirrors.map((m) => rewrite(m.location, remainder, m.insecure, true));
  if (!entry.blocked) out.push(rewrite(entry.location, remainder, entry.insecure, false));
  if (out.length === 0) throw failedPrecondition(`pulls of ${name} are blocked by the registry configuration (prefix ${prefix})`);
  return out;
}
