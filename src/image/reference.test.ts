import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReference, isImageId, parseReference } from './reference';
import { RuntimeError } from '../domain/errors';

const defaults = { defaultRegistry: 'docker.io', defaultNamespace: 'library' };
const norm = (s: string, d = defaults) => formatReference(parseReference(s, d));
const hex = 'a'.repeat(64);

test('unqualified names go to the default registry and namespace', () => {
  assert.equal(norm('busybox'), 'docker.io/library/busybox:latest');
  assert.equal(norm('busybox:1.36'), 'docker.io/library/busybox:1.36');
  assert.equal(norm('user/app'), 'docker.io/user/app:latest');
  assert.equal(norm('index.docker.io/library/busybox'), 'docker.io/library/busybox:latest');
  assert.equal(norm('busybox', { defaultRegistry: 'quay.io', defaultNamespace: '' }), 'quay.io/busybox:latest');
});

test('registries, ports, tags and digests', () => {
  assert.equal(norm('registry.k8s.io/pause:3.9'), 'registry.k8s.io/pause:3.9');
  assert.equal(norm('127.0.0.1:5000/a/b/c'), '127.0.0.1:5000/a/b/c:latest');
  assert.equal(norm('localhost/app:v1'), 'localhost/app:v1');
  assert.equal(norm(`localhost:5000/app@sha256:${hex}`), `localhost:5000/app@sha256:${hex}`);
  assert.equal(norm(`app:v1@sha256:${hex}`), `docker.io/library/app:v1@sha256:${hex}`);
  const r = parseReference('127.0.0.1:5000/x', defaults);
  assert.deepEqual(r, { registry: '127.0.0.1:5000', repository: 'x', tag: 'latest', digest: null });
});

test('invalid references are refused naming the reference', () => {
  for (const bad of ['', 'Busybox', 'a//b', 'app:', 'app@sha256:xyz', 'app:bad tag', '-x']) {
    assert.throws(
      () => parseReference(bad, defaults),
      (e: RuntimeError) => e.kind === 'invalid-argument' && e.message.includes(JSON.stringify(bad)),
    );
  }
});

test('image ids', () => {
  assert.ok(isImageId(hex));
  assert.ok(isImageId(`sha256:${hex}`));
  assert.ok(!isImageId('busybox'));
});
