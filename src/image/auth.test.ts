import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basicHeader, credentialsFrom, parseChallenges } from './auth';

test('bearer challenge with quoted params', () => {
  assert.deepEqual(
    parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'),
    [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } }],
  );
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
