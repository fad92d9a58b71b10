import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OpJournals } from './op-journal';
import { CleanupStack, type UndoAction } from '../domain/cleanup';
import { createLogger } from '../obs/logger';

const log = createLogger('fatal');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-journal-'));
}

test('op journal: undos are on disk before the step, in order; finish removes the journal', async () => {
  const dir = tempDir();
  try {
    const journals = new OpJournals(dir);
    const j = await journals.begin('RunPodSandbox', 'a'.repeat(64));
    const undone: UndoAction[] = [];
    const points: number[] = [];
    let n = 0;
    const stack = new CleanupStack(log, {
      append: (a) => j.append(a),
      run: async (a) => void undone.push(a),
      point: () => void points.push(++n),
      finish: () => j.finish(),
    });
    await stack.record({ kind: 'tree', path: '/x' });
    // written before record() returned, i.e. before the caller makes the thing
    let pending = await journals.pending();
    assert.deepEqual(
      pending.map((p) => [p.header.op, p.header.id, p.undos]),
      [['RunPodSandbox', 'a'.repeat(64), [{ kind: 'tree', path: '/x' }]]],
    );
    await stack.record({ kind: 'cgroup', path: '/pod' });
    pending = await journals.pending();
    assert.deepEqual(
      pending[0].undos.map((u) => u.kind),
      ['tree', 'cgroup'],
    );
    // an in-process failure runs the recorded undos last first, then drops the journal
    assert.deepEqual(await stack.unwind(), []);
    assert.deepEqual(
      undone.map((u) => u.kind),
      ['cgroup', 'tree'],
    );
    assert.deepEqual(await journals.pending(), []);
    assert.deepEqual(points, [1, 2, 3, 4], 'a fault point before and after each journal write');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('op journal: a torn last line is ignored, a header-less file is dropped, a commit removes it', async () => {
  const dir = tempDir();
  try {
    const journals = new OpJournals(dir);
    fs.writeFileSync(
      path.join(dir, 'x.CreateContainer.1.1.jsonl'),
      `${JSON.stringify({ op: 'CreateContainer', id: 'c', at: '' })}\n${JSON.stringify({ undo: { kind: 'file', path: '/f' } })}\n{"undo":{"ki`,
    );
    fs.writeFileSync(path.join(dir, 'y.RunPodSandbox.1.2.jsonl'), '');
    const pending = await journals.pending();
    assert.deepEqual(
      pending.map((p) => p.undos),
      [[{ kind: 'file', path: '/f' }]],
    );
    assert.deepEqual(fs.readdirSync(dir), ['x.CreateContainer.1.1.jsonl']);
    const j = await journals.begin('StartContainer', 'd');
    const stack = new CleanupStack(log, { append: (a) => j.append(a), run: async () => {}, point: () => {}, finish: () => j.finish() });
    await stack.record({ kind: 'cgroup', path: '/c', keep: true });
    await stack.commit();
    assert.deepEqual(fs.readdirSync(dir), ['x.CreateContainer.1.1.jsonl']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
