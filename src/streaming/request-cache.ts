/**
 * The streaming server's single-use tokens, as kubelet's streaming library keeps them
 * (pkg/kubelet/cri/streaming/request_cache.go): an Exec, Attach or PortForward RPC stores
 * its request under a random token and answers with a URL naming it; the first upgrade
 * request to that URL takes the request out. Tokens live in memory only (a daemon restart
 * invalidates them all), expire one minute after they were made, and at most 1000 wait at
 * once. No timer per token: expiry is checked when a token is consumed, and expired tokens
 * are swept (oldest first) when a new one is inserted.
 */
import { randomBytes } from 'node:crypto';
import { RuntimeError } from '../domain/errors';

/** kubelet's cacheTTL */
export const tokenTtlMs = 60_000;
/** kubelet's maxInFlight */
export const maxTokensInFlight = 1000;
/** kubelet's tokenLen: characters of URL-safe base64, 48 random bits */
export const tokenLength = 8;

interface Entry<T> {
  request: T;
  expiresAt: number;
}

export interface RequestCacheOptions {
  /** milliseconds since some epoch; Date.now unless a test injects its clock */
  now?: () => number;
  ttlMs?: number;
  maxInFlight?: number;
  /** a token is checked as if it were used this much later (the StreamToken fault, for tests of a whole daemon) */
  consumeLagMs?: number;
}

export class RequestCache<T> {
  /** insertion order is age order: a Map iterates oldest first, which the sweep relies on */
  private readonly entries = new Map<string, Entry<T>>();
  private readonly now: () => number;
  private readonly ttlMs: number;
  private readonly maxInFlight: number;
  private readonly consumeLagMs: number;

  constructor(opts: RequestCacheOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.ttlMs = opts.ttlMs ?? tokenTtlMs;
    this.maxInFlight = opts.maxInFlight ?? maxTokensInFlight;
    this.consumeLagMs = opts.consumeLagMs ?? 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Stores the request and returns its token; RESOURCE_EXHAUSTED when maxInFlight wait already. */
  insert(request: T): string {
    this.sweep();
    if (this.entries.size >= this.maxInFlight) {
      throw new RuntimeError('resource-exhausted', `maximum number of in-flight streaming requests (${this.maxInFlight}) exceeded`);
    }
    for (let tries = 0; tries < 10; tries++) {
      const token = randomBytes(Math.ceil((tokenLength * 6) / 8))
        .toString('base64url')
        .slice(0, tokenLength);
      if (this.entries.has(token)) continue;
      this.entries.set(token, { request, expiresAt: this.now() + this.ttlMs });
      return token;
    }
    throw new Error('failed to generate a unique streaming token');
  }

  /** Takes the request out: null when the token is unknown, already used or expired. */
  consume(token: string): T | null {
    const entry = this.entries.get(token);
    if (!entry) return null;
    this.entries.delete(token);
    return this.now() + this.consumeLagMs > entry.expiresAt ? null : entry.request;
  }

  private sweep(): void {
    const now = this.now();
    for (const [token, entry] of this.entries) {
      if (now <= entry.expiresAt) return;
      this.entries.delete(token);
    }
  }
}
