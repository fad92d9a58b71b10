/**
 * Registry authentication: parsing `WWW-Authenticate` challenges (RFC 7235) and the
 * credentials kubelet sends in the CRI AuthConfig (username/password, a base64 `auth`
 * pair, an identity token for the OAuth2 refresh flow, or a ready registry token).
 */
import { createHash } from 'node:crypto';

export interface Challenge {
  /** lower-case: "bearer", "basic" */
  scheme: string;
  params: Record<string, string>;
}

export interface Credentials {
  username: string | null;
  password: string | null;
  /** a refresh token for the token endpoint (docker's "identitytoken") */
  identityToken: string | null;
  /** a bearer token to send as is */
  registryToken: string | null;
}

export const anonymous: Credentials = { username: null, password: null, identityToken: null, registryToken: null };

export interface AuthConfigFields {
  username?: string;
  password?: string;
  auth?: string;
  identity_token?: string;
  registry_token?: string;
}

/** Credentials from a CRI AuthConfig (absent or empty fields are null). */
export function credentialsFrom(auth: AuthConfigFields | null | undefined): Credentials {
  if (!auth) return anonymous;
  let username = auth.username || null;
  let password = auth.password || null;
  if (auth.auth) {
    const pair = Buffer.from(auth.auth, 'base64').toString('utf8');
    const colon = pair.indexOf(':');
    if (colon > 0) {
      username = pair.slice(0, colon);
      password = pair.slice(colon + 1);
    }
  }
  return { username, password, identityToken: auth.identity_token || null, registryToken: auth.registry_token || null };
}

/**
 * Names the identity behind `c`, for caches of what it obtained (bearer tokens): a hash of
 * every field, so two sets of credentials share a key only when they are the same, and no
 * credentials at all have a key of their own. The secrets themselves are never the key.
 */
export function credentialsKey(c: Credentials): string {
  if (c.username === null && c.password === null && c.identityToken === null && c.registryToken === null) return 'anonymous';
  return createHash('sha256')
    .update(JSON.stringify([c.username, c.password, c.identityToken, c.registryToken]))
    .digest('hex');
}

export function basicHeader(c: Credentials): string | null {
  if (c.username === null) return null;
  return `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}`;
}

/**
 * Parses a WWW-Authenticate value, which may hold several challenges:
 * `Bearer realm="https://a/token",service="reg",scope="repository:x:pull", Basic realm="r"`.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i])) i++;
    return header.slice(start, i);
  };
  let current: Challenge | null = null;
  while (i < n) {
    skipWs();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const word = token();
    if (word === '') {
      i++; // junk: skip a character
      continue;
    }
    skipWs();
    if (header[i] === '=' && current !== null) {
      i++;
      skipWs();
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i++];
        }
        i++; // closing quote
      } else {
        value = token();
      }
      current.params[word.toLowerCase()] = value;
    } else {
      // A new scheme; a token68 after it ("Negotiate abc==") is kept as params.token.
      current = { scheme: word.toLowerCase(), params: {} };
      out.push(current);
      const t68 = /^([A-Za-z0-9\-._~+/]+=*)[ \t]*(?:,|$)/.exec(header.slice(i));
      if (t68) {
        current.params.token = t68[1];
        i += t68[1].length;
      }
    }
  }
  return out;
}
