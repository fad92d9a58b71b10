/** Name reservations, id prefixes and the cleanup stack. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registrar, NameTakenError } from '../../src/domain/registrar';
import { IdIndex, containerName, newId, sandboxName } from '../../src/domain/ids';
import { CleanupStack } from '../../src/domain/cleanup';
import { RuntimeError } from '../../src/domain/errors';
import { createLogger } from '../../src/obs/logger';

const log = createLogger('fatal');

test('registrar: one id per name, idempotent for the holder, names the holder otherwise', () => {
  const r = new Registrar();
  r.reserve('k8s_a', 'id1');
  r.reserve('k8s_a', 'id1');
  assert.throws(
    () => r.reserve('k8s_a', 'id2'),
    (e: NameTakenError) => e.holder === 'id1' && /reserved for id1/.test(e.message),
  );
  assert.equal(r.get('k8s_a'), 'id1');
  r.releaseId('id1');
  assert.equal(r.get('k8s_a'), null);
  r.reserve('k8s_a', 'id2');
  assert.equal(r.size, 1);
});

test('names and ids', () => {
  assert.equal(sandboxName({ name: 'web', namespace: 'default', uid: 'u1', attempt: 2 }), 'k8s_web_default_u1_2');
  assert.equal(containerName({ name: 'app', attempt: 0 }, { name: 'web', namespace: 'ns', uid: 'u1' }), 'k8s_app_web_ns_u1_0');
  assert.match(newId(), /^[0-9a-f]{64}$/);
});

test('id index: unique prefixes resolve, ambiguous and empty ones are invalid', () => {
  const ix = new IdIndex();
  ix.add('abc123');
  ix.add('abd456');
  ix.add('ff');
  assert.equal(ix.resolve('abc', 'container'), 'abc123');
  assert.equal(ix.resolve('ff', 'container'), 'ff');
  assert.equal(ix.resolve('zz', 'container'), null);
  assert.throws(
    () => ix.resolve('ab', 'container'),
    (e: RuntimeError) => e.kind === 'invalid-argument' && /ambiguous/.test(e.message),
  );
  assert.throws(
    () => ix.resolve('', 'sandbox'),
    (e: RuntimeError) => e.kind === 'invalid-argument' && /sandbox id is empty/.test(e.message),
  );
  assert.throws(
    () => ix.mustResolve('zz', 'sandbox'),
    (e: RuntimeError) => e.kind === 'not-found' && /sandbox zz not found/.test(e.message),
  );
  ix.delete('abc123');
  assert.equal(ix.resolve('ab', 'container'), 'abd456');
});

test('cleanup stack: undos run last first, retried, failures reported without stopping the rest', async () => {
  const order: string[] = [];
  const s = new CleanupStack(log);
  let flaky = 0;
  s.push('a', () => void order.push('a'));
  s.push('flaky', () => {
    if (flaky++ < 1) throw new Error('busy');
    order.push('flaky');
  });
  s.push('broken', () => {
    throw new Error('always');
  });
  s.push('c', async () => void order.push('c'));
  const failed = await s.unwind();
  assert.deepEqual(order, ['c', 'flaky', 'a']);
  assert.deepEqual(failed, ['broken']);
  assert.equal(s.size, 0);
  s.push('x', () => void order.push('x'));
  await s.commit();
  assert.deepEqual(await s.unwind(), []);
  assert.equal(order.includes('x'), false);
});
