import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContainerRecord } from '../../container/model';
import type { SandboxRecord } from '../../sandbox/model';
import { selectContainers, selectSandboxes } from './filter';

const sandbox = (id: string, state: string, labels: Record<string, string>) => ({ id, state, spec: { labels } }) as unknown as SandboxRecord;
const container = (id: string, sandboxId: string, state: string, labels: Record<string, string>) => ({ id, sandboxId, state, spec: { labels } }) as unknown as ContainerRecord;

/** A store looked up as the services do: by id or unique prefix. */
function lookup<R extends { id: string }>(records: R[]) {
  return {
    list: () => records,
    get: (p: string) => {
      const hits = records.filter((r) => r.id.startsWith(p));
      return hits.length === 1 ? hits[0]! : null;
    },
  };
}

const sandboxes = lookup([sandbox('aa1', 'SANDBOX_READY', { app: 'web' }), sandbox('bb2', 'SANDBOX_NOTREADY', { app: 'db' })]);
const containers = lookup([
  container('c1', 'aa1', 'CONTAINER_RUNNING', { app: 'web', tier: 'front' }),
  container('c2', 'aa1', 'CONTAINER_EXITED', { app: 'web' }),
  container('d3', 'bb2', 'CONTAINER_RUNNING', { app: 'db' }),
]);
const deps = { sandboxes, containers };
const ids = (rs: Array<{ id: string }>) => rs.map((r) => r.id);
const cf = (f: Partial<Parameters<typeof selectContainers>[1] & object>) => ({ id: '', pod_sandbox_id: '', label_selector: {}, ...f });

describe('selectContainers', { timeout: 10_000 }, () => {
  it('selects all without a filter or with an empty one', () => {
    assert.deepEqual(ids(selectContainers(deps, null)), ['c1', 'c2', 'd3']);
    assert.deepEqual(ids(selectContainers(deps, cf({ state: null }))), ['c1', 'c2', 'd3']);
  });
  it('narrows by id prefix and by sandbox id prefix; an unknown one selects nothing', () => {
    assert.deepEqual(ids(selectContainers(deps, cf({ id: 'd' }))), ['d3']);
    assert.deepEqual(ids(selectContainers(deps, cf({ id: 'c' }))), []);
    assert.deepEqual(ids(selectContainers(deps, cf({ pod_sandbox_id: 'aa' }))), ['c1', 'c2']);
    assert.deepEqual(ids(selectContainers(deps, cf({ pod_sandbox_id: 'zz' }))), []);
    assert.deepEqual(ids(selectContainers(deps, cf({ id: 'd3', pod_sandbox_id: 'aa1' }))), []);
  });
  it('matches the state when the filter has one (the stats filter has none)', () => {
    assert.deepEqual(ids(selectContainers(deps, cf({ state: { state: 'CONTAINER_RUNNING' } }))), ['c1', 'd3']);
  });
  it('needs every label of the selector to match exactly', () => {
    assert.deepEqual(ids(selectContainers(deps, cf({ label_selector: { app: 'web' } }))), ['c1', 'c2']);
    assert.deepEqual(ids(selectContainers(deps, cf({ label_selector: { app: 'web', tier: 'front' } }))), ['c1']);
    assert.deepEqual(ids(selectContainers(deps, cf({ label_selector: { app: 'we' } }))), []);
  });
});

describe('selectSandboxes', { timeout: 10_000 }, () => {
  it('narrows by id prefix, state and labels', () => {
    assert.deepEqual(ids(selectSandboxes(deps, null)), ['aa1', 'bb2']);
    assert.deepEqual(ids(selectSandboxes(deps, { id: 'b', label_selector: {} })), ['bb2']);
    assert.deepEqual(ids(selectSandboxes(deps, { id: 'x', label_selector: {} })), []);
    assert.deepEqual(ids(selectSandboxes(deps, { id: '', label_selector: {}, state: { state: 'SANDBOX_READY' } })), ['aa1']);
    assert.deepEqual(ids(selectSandboxes(deps, { id: '', label_selector: { app: 'db' } })), ['bb2']);
  });
});
