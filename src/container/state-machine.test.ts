import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RuntimeError } from '../domain/errors';
import { containerRecordVersion, type ContainerRecord, type ContainerState } from './model';
import { canMove, dropHeldProcess, exitCodeOf, exitMove, holdProcess, transition, type ContainerMove } from './state-machine';

const id = 'c'.repeat(64);

function record(state: ContainerState): ContainerRecord {
  const running = state === 'CONTAINER_RUNNING';
  return {
    version: containerRecordVersion,
    id,
    name: 'k8s_app_pod_ns_uid_0',
    sandboxId: 's'.repeat(64),
    spec: {} as ContainerRecord['spec'],
    image: { id: 'sha256:1', ref: 'sha256:1', name: 'busybox' },
    state,
    createdAt: '1',
    startedAt: running || state === 'CONTAINER_EXITED' ? '2' : '0',
    finishedAt: state === 'CONTAINER_EXITED' ? '3' : '0',
    exitCode: state === 'CONTAINER_EXITED' ? 7 : 0,
    reason: state === 'CONTAINER_EXITED' ? 'Error' : '',
    message: '',
    stateDir: '/x',
    runDir: '/y',
    rootfs: '/y/rootfs',
    upperDir: '/z',
    logPath: '',
    cgroupPath: '/pod/c',
    resources: null,
    stopSignal: 'SIGTERM',
    pid: state === 'CONTAINER_CREATED' || running ? 42 : null,
    pidStartTime: state === 'CONTAINER_CREATED' || running ? '1000' : null,
  };
}

const states: ContainerState[] = ['CONTAINER_CREATED', 'CONTAINER_RUNNING', 'CONTAINER_EXITED', 'CONTAINER_UNKNOWN'];
const allowed = new Set(['CONTAINER_CREATED>CONTAINER_RUNNING', 'CONTAINER_CREATED>CONTAINER_EXITED', 'CONTAINER_RUNNING>CONTAINER_EXITED']);
const exited: ContainerMove = { to: 'CONTAINER_EXITED', exitCode: 3, reason: 'Error', message: 'm' };

function moveTo(to: ContainerState): ContainerMove {
  if (to === 'CONTAINER_EXITED') return exited;
  // CREATED and UNKNOWN are no move's target; a record read from disk could still ask.
  return { to } as ContainerMove;
}

describe('container state machine', { timeout: 30_000 }, () => {
  for (const from of states) {
    for (const to of states) {
      const ok = allowed.has(`${from}>${to}`);
      it(`${ok ? 'allows' : 'refuses'} ${from} -> ${to}`, () => {
        assert.equal(canMove(from, to), ok);
        const r = record(from);
        const before = { ...r };
        if (!ok) {
          assert.throws(
            () => transition(r, moveTo(to), '99'),
            (e: unknown) =>
              e instanceof RuntimeError &&
              e.kind === 'failed-precondition' &&
              e.message.includes(id) &&
              e.message.includes(from.replace('CONTAINER_', '').toLowerCase()) &&
              e.message.includes(to.replace('CONTAINER_', '').toLowerCase()),
          );
          assert.deepEqual(r, before, 'a refused move changes nothing');
          return;
        }
        transition(r, moveTo(to), '99');
        assert.equal(r.state, to);
        if (to === 'CONTAINER_RUNNING') {
          assert.deepEqual(
            { startedAt: r.startedAt, finishedAt: r.finishedAt, pid: r.pid, pidStartTime: r.pidStartTime, exitCode: r.exitCode },
            { startedAt: '99', finishedAt: '0', pid: 42, pidStartTime: '1000', exitCode: 0 },
          );
        } else {
          assert.deepEqual(
            { startedAt: r.startedAt, finishedAt: r.finishedAt, pid: r.pid, pidStartTime: r.pidStartTime, exitCode: r.exitCode, reason: r.reason, message: r.message },
            { startedAt: before.startedAt, finishedAt: '99', pid: null, pidStartTime: null, exitCode: 3, reason: 'Error', message: 'm' },
          );
        }
      });
    }
  }

  it('takes the time now when none is given', () => {
    const r = record('CONTAINER_CREATED');
    transition(r, { to: 'CONTAINER_RUNNING' });
    assert.match(r.startedAt, /^[1-9][0-9]{18,}$/);
  });

  it('holds and drops the process of a created container only', () => {
    const r = record('CONTAINER_CREATED');
    dropHeldProcess(r);
    assert.deepEqual([r.pid, r.pidStartTime], [null, null]);
    holdProcess(r, 7, '77');
    assert.deepEqual([r.pid, r.pidStartTime], [7, '77']);
    for (const s of ['CONTAINER_RUNNING', 'CONTAINER_EXITED', 'CONTAINER_UNKNOWN'] as const) {
      const o = record(s);
      const failed = (e: unknown) => e instanceof RuntimeError && e.kind === 'failed-precondition' && e.message.includes(id);
      assert.throws(() => holdProcess(o, 7, '77'), failed);
      assert.throws(() => dropHeldProcess(o), failed);
      assert.equal(o.pid, record(s).pid);
    }
  });

  it('reports exits as the CRI does', () => {
    assert.equal(exitCodeOf({ exitCode: 0, signal: null }), 0);
    assert.equal(exitCodeOf({ exitCode: 2, signal: null }), 2);
    assert.equal(exitCodeOf({ exitCode: null, signal: 'SIGKILL' }), 137);
    assert.equal(exitCodeOf({ exitCode: null, signal: 'SIGTERM' }), 143);
    assert.equal(exitCodeOf({ exitCode: null, signal: null }), null);
    assert.deepEqual(exitMove(0, false), { to: 'CONTAINER_EXITED', exitCode: 0, reason: 'Completed', message: '' });
    assert.deepEqual(exitMove(1, false), { to: 'CONTAINER_EXITED', exitCode: 1, reason: 'Error', message: '' });
    assert.deepEqual(exitMove(137, true), { to: 'CONTAINER_EXITED', exitCode: 137, reason: 'OOMKilled', message: '' });
    const unknown = exitMove(null, true);
    assert.equal(unknown.to, 'CONTAINER_EXITED');
    assert.deepEqual(unknown.to === 'CONTAINER_EXITED' && [unknown.exitCode, unknown.reason], [255, 'ContainerStatusUnknown']);
  });
});
