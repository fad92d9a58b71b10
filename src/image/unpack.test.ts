import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layerPath, whiteoutOf } from './unpack';

test('whiteout names map to overlay actions', () => {
  assert.deepEqual(whiteoutOf('etc/.wh.passwd'), { kind: 'whiteout', path: 'etc/passwd' });
  assert.deepEqual(whiteoutOf('.wh.tmp'), { kind: 'whiteout', path: 'tmp' });
  assert.deepEqual(whiteoutOf('var/lib/.wh..wh..opq'), { kind: 'opaque', dir: 'var/lib' });
  assert.deepEqual(whiteoutOf('.wh..wh..opq'), { kind: 'opaque', dir: '' });
  assert.deepEqual(whiteoutOf('.wh..wh.plnk/123'), null);
  assert.deepEqual(whiteoutOf('a/.wh..wh.aufs'), { kind: 'ignore' });
  assert.equal(whiteoutOf('etc/passwd'), null);
  assert.equal(whiteoutOf('etc/x.wh.y'), null);
});

test('layer paths are normalized and may not climb out', () => {
  assert.equal(layerPath('./a//b/'), 'a/b');
  assert.equal(layerPath('/etc/passwd'), 'etc/passwd');
  assert.equal(layerPath('./'), '');
  assert.throws(() => layerPath('../escape'), /refusing layer: .*"\.\.\/escape"/);
  assert.throws(() => layerPath('a/../../b'), /\.\./);
});
