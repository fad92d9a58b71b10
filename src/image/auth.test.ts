import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RuntimeError } from '../domain/errors';
import { anonymous, basicHeader, credentialsFrom, parseChallenges } from './auth';
import { RegistryClient } from './registry-client';

test('bearer challenge with quoted params', () => {
  assert.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
  ]);
});

test('basic challenge, several challenges, escapes and unquoted values', () => {
  assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  assert.deepEqual(parseChallenges('Bearer realm="a,b", error=invalid_token, Basic realm="x\\"y"'), [
    { scheme: 'bearer', params: { realm: 'a,b', error: 'invalid_token' } },
    { scheme: 'basic', params: { realm: 'x"y' } },
  ]);
  assert.deepEqual(parseChallenges(''), []);
});

test('credentials from the CRI AuthConfig', () => {
  const c = credentialsFrom({ auth: Buffer.from('bob:s:e:c').toString('base64') });
  assert.equal(c.username, 'bob');
  assert.equal(c.password, 's:e:c');
  assert.equal(basicHeader(credentialsFrom({ username: 'u', password: 'p' })), `Basic ${Buffer.from('u:p').toString('base64')}`);
  assert.equal(basicHeader(credentialsFrom(null)), null);
  assert.equal(credentialsFrom({ identity_token: 'tok' }).identityToken, 'tok');
});

/**
 * A registry whose token service gives each identity its own token (alice by basic auth,
 * bob by an identity token) and refuses anyone else; the registry takes either token.
 */
async function twoUserRegistry(): Promise<{ host: string; tokenRequests: string[]; close: () => Promise<void> }> {
  const tokenRequests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        let token: string | null = null;
        if (req.headers.authorization === `Basic ${Buffer.from('alice:right').toString('base64')}`) token = 'tok-alice';
        else if (req.method === 'POST' && form.get('refresh_token') === 'bob-refresh') token = 'tok-bob';
        tokenRequests.push(token ?? 'refused');
        if (token === null) res.writeHead(401).end();
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
      });
      return;
    }
    if (req.headers.authorization !== 'Bearer tok-alice' && req.headers.authorization !== 'Bearer tok-bob') {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="fake",scope="repository:team/app:pull"` }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end('{"m":1}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { host, tokenRequests, close: () => new Promise((r) => server.close(() => r())) };
}

test('a cached registry token serves only the identity that obtained it', async () => {
  const reg = await twoUserRegistry();
  try {
    const client = new RegistryClient({ userAgent: 'test', idleTimeoutMs: 5000 });
    const ep = { host: reg.host, repository: 'team/app', insecure: true, mirror: false };
    const signal = new AbortController().signal;
    const refused = (e: unknown) => e instanceof RuntimeError && e.kind === 'unauthenticated';
    const bob = credentialsFrom({ identity_token: 'bob-refresh' });
    const alice = credentialsFrom({ username: 'alice', password: 'right' });

    await client.getManifest(ep, bob, 'v1', signal);
    assert.deepEqual(reg.tokenRequests, ['tok-bob']);
    // No credentials (and no username, as bob has none either): bob's token is not theirs.
    await assert.rejects(client.getManifest(ep, anonymous, 'v1', signal), refused);
    assert.deepEqual(reg.tokenRequests, ['tok-bob', 'refused']);

    await client.getManifest(ep, alice, 'v1', signal);
    // alice's name with another password gets nothing of alice's.
    await assert.rejects(client.getManifest(ep, credentialsFrom({ username: 'alice', password: 'wrong' }), 'v1', signal), refused);
    assert.deepEqual(reg.tokenRequests, ['tok-bob', 'refused', 'tok-alice', 'refused']);

    // Each identity still reuses its own token.
    await client.getManifest(ep, bob, 'v1', signal);
    await client.getManifest(ep, alice, 'v1', signal);
    assert.equal(reg.tokenRequests.length, 4);
  } finally {
    await reg.close();
  }
});
