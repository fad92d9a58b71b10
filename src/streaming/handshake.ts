/**
 * The k8s httpstream upgrade handshake for SPDY (apimachinery util/httpstream Handshake and
 * spdy.ResponseUpgrader), as kubelet's streaming server runs it: the protocol is the first
 * of the client's X-Stream-Protocol-Version values (comma-separated, possibly in several
 * headers) the server supports; none given is 400, none in common is 403 naming the
 * supported ones in X-Accepted-Stream-Protocol-Versions; then `Connection: Upgrade` and
 * `Upgrade: SPDY/3.1` must be there (400 otherwise).
 */
import type { IncomingMessage } from 'node:http';

export const remoteCommandProtocols = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;
export const portForwardProtocols = ['portforward.k8s.io'] as const;

export type HandshakeResult = { ok: true; protocol: string } | { ok: false; code: number; message: string; headers: [string, string][] };

export function spdyHandshake(req: IncomingMessage, supported: readonly string[]): HandshakeResult {
  const values = headerValues(req, 'x-stream-protocol-version');
  if (values.length === 0) {
    const count = new Set(headerNames(req)).size;
    return fail(400, `unable to upgrade: header X-Stream-Protocol-Version does not exist in request with ${count} headers`);
  }
  const offered = values
    .flatMap((v) => v.split(','))
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (offered.length === 0) return fail(400, `unable to upgrade: header X-Stream-Protocol-Version contains [${values.join(' ')}], but no valid protocols`);
  const protocol = offered.find((p) => supported.includes(p));
  if (!protocol) {
    return {
      ok: false,
      code: 403,
      message: `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${supported.join(' ')}]`,
      headers: supported.map((p) => ['X-Accepted-Stream-Protocol-Versions', p]),
    };
  }
  if (!isSpdyUpgrade(req)) return fail(400, 'unable to upgrade: missing upgrade headers in request');
  return { ok: true, protocol };
}

export function isSpdyUpgrade(req: IncomingMessage): boolean {
  const connection = headerValues(req, 'connection').some((v) => v.toLowerCase().includes('upgrade'));
  const upgrade = headerValues(req, 'upgrade').some((v) => v.toLowerCase() === 'spdy/3.1');
  return connection && upgrade;
}

/** wsstream.IsWebSocketRequest: Upgrade: websocket, and upgrade among the Connection tokens. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
  const connection = (req.headers.connection ?? '')
    .toLowerCase()
    .split(',')
    .some((t) => t.trim() === 'upgrade');
  return upgrade && connection;
}

/** Every value of a header, however many times it was sent (Node joins most with ", "). */
function headerValues(req: IncomingMessage, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i].toLowerCase() === name) out.push(req.rawHeaders[i + 1]);
  return out;
}

function headerNames(req: IncomingMessage): string[] {
  const out: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) out.push(req.rawHeaders[i].toLowerCase());
  return out;
}

function fail(code: number, message: string): HandshakeResult {
  return { ok: false, code, message, headers: [] };
}
