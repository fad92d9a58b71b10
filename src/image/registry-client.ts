/**
 * A client for the OCI distribution API (v2) on one endpoint: manifests and blobs, with
 * anonymous access, bearer tokens obtained from `WWW-Authenticate` challenges, and basic
 * auth. HTTPS always; for an endpoint configured insecure, https without verification
 * first and plain http when the endpoint does not speak TLS. Failures are RuntimeErrors
 * whose message names the registry and the object.
 */
import type { IncomingMessage } from 'node:http';
import { RuntimeError, notFound, unavailable, type ErrorKind } from '../domain/errors';
import { basicHeader, credentialsKey, parseChallenges, type Credentials } from './auth';
import type { Endpoint } from './endpoints';
import { httpRequest, readBody, HttpTimeoutError } from './http';
import { MANIFEST_ACCEPT } from './manifest';

export interface RegistryClientOptions {
  userAgent: string;
  /** a request with no bytes moving for this long fails */
  idleTimeoutMs: number;
}

interface CachedToken {
  value: string;
  expiresAt: number;
}

const MAX_MANIFEST = 4 * 1024 * 1024;

/** The Errors array of a distribution error body, as "CODE: message" text. */
function registryErrorText(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code?: string; message?: string }> };
    const list = (parsed.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': '));
    if (list.length > 0) return list.join('; ');
  } catch {
    // not JSON
  }
  return body.toString('utf8', 0, Math.min(body.length, 200)).trim();
}

function connectionFailure(e: unknown): boolean {
  if (e instanceof HttpTimeoutError) return true;
  const code = (e as NodeJS.ErrnoException | null)?.code ?? '';
  return (
    /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EPIPE|EPROTO|ERR_SSL_|UND_ERR|DEPTH_ZERO|UNABLE_TO_VERIFY|CERT_|SELF_SIGNED)/.test(code) ||
    (e instanceof Error && /socket hang up|wrong version number|TLS/.test(e.message))
  );
}

export class RegistryClient {
  /** insecure hosts found to speak plain http */
  private readonly plainHttp = new Set<string>();
  /** bearer tokens by host, scope and the identity that obtained them (credentialsKey) */
  private readonly tokens = new Map<string, CachedToken>();
  /** hosts that asked for basic auth: send it up front next time */
  private readonly basicHosts = new Set<string>();

  constructor(private readonly opts: RegistryClientOptions) {}

  /** GETs a manifest by tag or digest: its body and media type. */
  async getManifest(ep: Endpoint, creds: Credentials, reference: string, signal: AbortSignal): Promise<{ body: Buffer; mediaType: string }> {
    const what = `manifest ${ep.host}/${ep.repository}:${reference}`.replace(':sha256:', '@sha256:');
    const res = await this.send(ep, creds, `manifests/${reference}`, { Accept: MANIFEST_ACCEPT }, signal, what);
    const body = await readBody(res, MAX_MANIFEST).catch((e: unknown) => {
      throw this.transport(ep, e, what);
    });
    const mediaType = (res.headers['content-type'] ?? '').split(';')[0].trim();
    return { body, mediaType };
  }

  /** GETs a blob; the caller reads (and verifies) the body stream. */
  getBlob(ep: Endpoint, creds: Credentials, digest: string, signal: AbortSignal): Promise<IncomingMessage> {
    return this.send(ep, creds, `blobs/${digest}`, {}, signal, `blob ${digest} of ${ep.host}/${ep.repository}`);
  }

  /** Maps an error thrown while reading a body to a RuntimeError naming the registry. */
  transport(ep: Endpoint, e: unknown, what: string): unknown {
    if (e instanceof RuntimeError) return e;
    if (connectionFailure(e)) return unavailable(`registry ${ep.host} unreachable while reading ${what}: ${(e as Error).message}`);
    return e;
  }

  private async send(ep: Endpoint, creds: Credentials, sub: string, headers: Record<string, string>, signal: AbortSignal, what: string): Promise<IncomingMessage> {
    const scope = `repository:${ep.repository}:pull`;
    let res = await this.attempt(ep, sub, { ...headers, ...this.authHeaders(ep, creds, scope) }, signal, what);
    if (res.statusCode === 401) {
      const challenges = parseChallenges(String(res.headers['www-authenticate'] ?? ''));
      res.resume();
      const bearer = challenges.find((c) => c.scheme === 'bearer');
      const basic = challenges.find((c) => c.scheme === 'basic');
      let auth: string | null = null;
      if (bearer && bearer.params.realm) {
        auth = `Bearer ${await this.fetchToken(ep, creds, bearer.params, scope, signal)}`;
      } else if (basic && creds.username !== null) {
        this.basicHosts.add(ep.host);
        auth = basicHeader(creds);
      } else if (basic || challenges.length === 0) {
        throw new RuntimeError('unauthenticated', `registry ${ep.host} requires authentication for ${ep.repository} and no credentials were given`);
      }
      if (auth !== null) res = await this.attempt(ep, sub, { ...headers, authorization: auth }, signal, what);
      if (res.statusCode === 401) {
        res.resume();
        throw new RuntimeError('unauthenticated', `registry ${ep.host} refused the credentials for ${ep.repository}: 401 unauthorized`);
      }
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const body = await readBody(res, 64 * 1024).catch(() => Buffer.alloc(0));
    const detail = registryErrorText(body);
    if (status === 404) {
      if (sub.startsWith('manifests/')) throw notFound(`manifest unknown: ${what.replace(/^manifest /, '')} not found${detail ? ` (${detail})` : ''}`);
      throw notFound(`${what} not found${detail ? ` (${detail})` : ''}`);
    }
    const kind: ErrorKind = status === 403 ? 'permission-denied' : status === 429 || status >= 500 ? 'unavailable' : 'failed-precondition';
    throw new RuntimeError(kind, `registry ${ep.host} answered ${status} for ${what}${detail ? `: ${detail}` : ''}`);
  }

  private authHeaders(ep: Endpoint, creds: Credentials, scope: string): Record<string, string> {
    if (creds.registryToken !== null) return { authorization: `Bearer ${creds.registryToken}` };
    const t = this.tokens.get(`${ep.host}|${scope}|${credentialsKey(creds)}`);
    if (t && t.expiresAt > Date.now()) return { authorization: `Bearer ${t.value}` };
    if (this.basicHosts.has(ep.host)) {
      const b = basicHeader(creds);
      if (b !== null) return { authorization: b };
    }
    return {};
  }

  /** One request, choosing https or (for insecure endpoints that need it) http. */
  private async attempt(ep: Endpoint, sub: string, headers: Record<string, string>, signal: AbortSignal, what: string): Promise<IncomingMessage> {
    const go = (scheme: 'https' | 'http') =>
      httpRequest(new URL(`${scheme}://${ep.host}/v2/${ep.repository}/${sub}`), {
        headers: { 'user-agent': this.opts.userAgent, ...headers },
        signal,
        idleTimeoutMs: this.opts.idleTimeoutMs,
        insecureTls: ep.insecure,
      });
    if (ep.insecure && this.plainHttp.has(ep.host)) return go('http').catch((e: unknown) => Promise.reject(this.transport(ep, e, what)));
    try {
      return await go('https');
    } catch (e) {
      if (signal.aborted) throw e;
      if (ep.insecure && connectionFailure(e) && (e as NodeJS.ErrnoException).code !== 'ECONNREFUSED') {
        // An insecure registry that does not speak TLS: remember, and use http from now on.
        try {
          const res = await go('http');
          this.plainHttp.add(ep.host);
          return res;
        } catch (e2) {
          throw this.transport(ep, e2, what);
        }
      }
      throw this.transport(ep, e, what);
    }
  }

  private async fetchToken(ep: Endpoint, creds: Credentials, params: Record<string, string>, scope: string, signal: AbortSignal): Promise<string> {
    const realm = new URL(params.realm);
    const wanted = params.scope || scope;
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent };
    let res: IncomingMessage;
    try {
      if (creds.identityToken !== null) {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, service: params.service ?? '', scope: wanted, client_id: 'nodecri' });
        res = await httpRequest(realm, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
          body: form.toString(),
          signal,
          idleTimeoutMs: this.opts.idleTimeoutMs,
          insecureTls: ep.insecure,
        });
      } else {
        if (params.service) realm.searchParams.set('service', params.service);
        realm.searchParams.set('scope', wanted);
        const b = basicHeader(creds);
        if (b !== null) headers.authorization = b;
        res = await httpRequest(realm, { headers, signal, idleTimeoutMs: this.opts.idleTimeoutMs, insecureTls: ep.insecure });
      }
    } catch (e) {
      throw connectionFailure(e) ? unavailable(`token service ${realm.host} of registry ${ep.host} unreachable: ${(e as Error).message}`) : e;
    }
    const body = await readBody(res, 1024 * 1024);
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new RuntimeError('unauthenticated', `registry ${ep.host}: the token service ${realm.host} refused the credentials for ${ep.repository} (${res.statusCode})`);
    }
    if ((res.statusCode ?? 0) >= 300) throw unavailable(`registry ${ep.host}: the token service ${realm.host} answered ${res.statusCode}`);
    const parsed = JSON.parse(body.toString('utf8')) as { token?: string; access_token?: string; expires_in?: number };
    const token = parsed.token ?? parsed.access_token;
    if (!token) throw unavailable(`registry ${ep.host}: the token service ${realm.host} returned no token`);
    // Refresh a little early; 60 s is the spec's default lifetime.
    const ttl = Math.max(10, (parsed.expires_in ?? 60) - 10);
    this.tokens.set(`${ep.host}|${scope}|${credentialsKey(creds)}`, { value: token, expiresAt: Date.now() + ttl * 1000 });
    return token;
  }
}
