import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RegistryConfig } from '../config';
import { endpointsFor } from './endpoints';
import { parseReference } from './reference';

const defaults = { defaultRegistry: 'docker.io', defaultNamespace: 'library' };
const reg = (r: Partial<RegistryConfig> & { location: string }): RegistryConfig => ({ prefix: null, insecure: false, blocked: false, mirrors: [], ...r });

test('no entry: the registry itself over https; docker.io goes to registry-1.docker.io', () => {
  assert.deepEqual(endpointsFor(parseReference('busybox', defaults), []), [{ host: 'registry-1.docker.io', repository: 'library/busybox', insecure: false, mirror: false }]);
});

test('a prefix rewrites to its location; mirrors come first; blocked drops the location', () => {
  const conf = [
    reg({ prefix: 'registry.k8s.io', location: '127.0.0.1:5000', insecure: true }),
    reg({ prefix: 'docker.io', location: 'docker.io', blocked: true, mirrors: [{ location: '127.0.0.1:5000', insecure: true }] }),
    reg({ prefix: 'quay.io/team', location: 'mirror.local/quay/team', mirrors: [{ location: 'm1:5000/x', insecure: false }] }),
  ];
  assert.deepEqual(endpointsFor(parseReference('registry.k8s.io/pause:3.9', defaults), conf), [{ host: '127.0.0.1:5000', repository: 'pause', insecure: true, mirror: false }]);
  assert.deepEqual(endpointsFor(parseReference('busybox', defaults), conf), [{ host: '127.0.0.1:5000', repository: 'library/busybox', insecure: true, mirror: true }]);
  assert.deepEqual(endpointsFor(parseReference('quay.io/team/app', defaults), conf), [
    { host: 'm1:5000', repository: 'x/app', insecure: false, mirror: true },
    { host: 'mirror.local', repository: 'quay/team/app', insecure: false, mirror: false },
  ]);
  // a prefix matches whole components only
  assert.equal(endpointsFor(parseReference('quay.io/teamx/app', defaults), conf)[0].host, 'quay.io');
  assert.throws(() => endpointsFor(parseReference('busybox', defaults), [reg({ location: 'docker.io', blocked: true })]), /blocked/);
});
