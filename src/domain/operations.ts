/**
 * Durable operations: each multi-step create and each teardown gets a journal before its
 * first side effect (see cleanup.ts and state/op-journal.ts), and the fault points that
 * tests use to kill the daemon inside it.
 */
import fsp from 'node:fs/promises';
import type { OpJournals, OpKind, PendingOp } from '../state/op-journal';
import type { Faults } from '../util/faults';
import type { DurableUndo } from './cleanup';
import type { Undoer } from './undoer';

export class Operations {
  constructor(
    private readonly journals: OpJournals,
    readonly undo: Undoer,
    private readonly faults: Faults,
  ) {}

  /** Opens the journal of operation `op` on `id`; the stack writes its undos there. */
  async begin(op: OpKind, id: string): Promise<DurableUndo> {
    this.faults.point(op);
    const journal = await this.journals.begin(op, id);
    return {
      append: (a) => journal.append(a),
      run: this.undo,
      point: () => this.faults.point(op),
      finish: () => journal.finish(),
    };
  }

  /**
   * Undoes an interrupted operation from its journal, last step first; its journal goes
   * once every undo succeeded (else it stays for the next start). Resolves to the undos
   * that failed.
   */
  async replay(p: PendingOp): Promise<string[]> {
    const failed: string[] = [];
    for (const a of [...p.undos].reverse()) {
      await this.undo(a).catch((e: unknown) => {
        failed.push(`${a.kind} ${'path' in a ? a.path : ''}: ${(e as Error).message}`);
      });
    }
    if (failed.length === 0) await fsp.rm(p.file, { force: true });
    return failed;
  }

  /**
   * A teardown (a stop or removal) under its own journal, which the next start rolls
   * forward if a crash interrupts it. The journal goes when `fn` settles either way: a
   * failure the client was told of is the client's to retry, not the next start's.
   * `fn` gets the operation's fault point, to call between its steps.
   */
  async teardown<T>(op: OpKind, id: string, fn: (step: () => void) => Promise<T>): Promise<T> {
    const journal = await this.begin(op, id);
    try {
      return await fn(journal.point);
    } finally {
      await journal.finish();
    }
  }

  /** A fault point of `op` outside any cleanup stack (between teardown steps). */
  point(op: OpKind): void {
    this.faults.point(op);
  }
}
