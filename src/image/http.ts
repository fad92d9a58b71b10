/**
 * One HTTP request over node:http/https with keep-alive, an idle timeout (no bytes for that
 * long fails the request, also while its body is read), cancellation by AbortSignal, and
 * redirects followed for GET (the Authorization header is dropped when the origin changes,
 * as registries redirect blob downloads to storage hosts).
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 64 });
const httpsInsecureAgent = new https.Agent({ keepAlive: true, maxSockets: 64, rejectUnauthorized: false });

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  signal: AbortSignal;
  idleTimeoutMs: number;
  /** skip tls verification (insecure registries) */
  insecureTls?: boolean;
}

export class HttpTimeoutError extends Error {
  override readonly name = 'HttpTimeoutError';
  readonly code = 'ETIMEDOUT';
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function once(url: URL, opts: HttpOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const mod = secure ? https : http;
    const agent = secure ? (opts.insecureTls ? httpsInsecureAgent : httpsAgent) : httpAgent;
    const req = mod.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent, signal: opts.signal });
    req.setTimeout(opts.idleTimeoutMs, () => {
      req.destroy(new HttpTimeoutError(`no answer from ${url.host} for ${opts.idleTimeoutMs / 1000} s`));
    });
    req.once('error', reject);
    req.once('response', (res) => {
      // The response body shares the socket timeout; turn its errors into stream errors.
      req.removeListener('error', reject);
      req.on('error', (e) => res.destroy(e));
      resolve(res);
    });
    req.end(opts.body);
  });
}

/** Sends the request, following up to 5 redirects for GET and HEAD. */
export async function httpRequest(url: URL, opts: HttpOptions): Promise<IncomingMessage> {
  let current = url;
  let headers = { ...(opts.headers ?? {}) };
  for (let hop = 0; ; hop++) {
    const res = await once(current, { ...opts, headers });
    const method = opts.method ?? 'GET';
    if (!REDIRECTS.has(res.statusCode ?? 0) || (method !== 'GET' && method !== 'HEAD') || hop >= 5 || !res.headers.location) return res;
    res.resume();
    const next = new URL(res.headers.location, current);
    if (next.origin !== current.origin) {
      const { authorization: _dropped, ...rest } = headers;
      headers = rest;
    }
    current = next;
  }
}

/** Reads a whole (small) body, refusing more than `limit` bytes. */
export async function readBody(res: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) {
      res.destroy();
      throw new Error(`response body over ${limit} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}
