import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RuntimeError } from '../domain/errors';
import { credentialsFrom, anonymous } from './auth';
import { RegistryClient } from './registry-client';

/** A registry that wants a bearer token from its own token endpoint, which wants basic auth. */
async function fakeRegistry(): Promise<{ host: string; tokenRequests: string[]; close: () => Promise<void> }> {
  const tokenRequests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      tokenRequests.push(url.search);
      if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'tok-1', expires_in: 300 }));
      return;
    }
    if (req.headers.authorization !== 'Bearer tok-1') {
      const host = req.headers.host;
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="fake",scope="repository:team/app:pull"` });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    if (url.pathname === '/v2/team/app/manifests/v1') {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end('{"m":1}');
      return;
    }
    res.writeHead(404).end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { host, tokenRequests, close: () => new Promise((r) => server.close(() => r())) };
}

test('bearer token flow: token fetched with basic credentials, cached, errors named', async () => {
  const reg = await fakeRegistry();
  try {
    const client = new RegistryClient({ userAgent: 'test', idleTimeoutMs: 5000 });
    const ep = { host: reg.host, repository: 'team/app', insecure: true, mirror: false };
    const signal = new AbortController().signal;
    const creds = credentialsFrom({ username: 'u', password: 'p' });
    const m = await client.getManifest(ep, creds, 'v1', signal);
    assert.equal(m.body.toString(), '{"m":1}');
    assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(reg.tokenRequests.length, 1);
    assert.match(reg.tokenRequests[0], /service=fake&scope=repository%3Ateam%2Fapp%3Apull/);
    // The token is reused; an unknown tag is manifest unknown.
    await assert.rejects(
      client.getManifest(ep, creds, 'v2', signal),
      (e: RuntimeError) => e.kind === 'not-found' && /manifest unknown: .*team\/app:v2 not found \(MANIFEST_UNKNOWN/.test(e.message),
    );
    assert.equal(reg.tokenRequests.length, 1);
    // No credentials: the token service refuses; the error names the registry.
    const fresh = new RegistryClient({ userAgent: 'test', idleTimeoutMs: 5000 });
    await assert.rejects(fresh.getManifest(ep, anonymous, 'v1', signal), (e: RuntimeError) => e.kind === 'unauthenticated' && e.message.includes(`registry ${reg.host}`));
  } finally {
    await reg.close();
  }
});
