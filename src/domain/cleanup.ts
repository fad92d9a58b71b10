/**
 * The undo stack of a multi-step operation (after CRI-O's resource cleaner), made durable:
 * before each step makes a kernel or disk resource, the step's undo is written to the
 * operation's journal (write-ahead), so that a daemon killed at any instant leaves a list
 * of everything that may exist, which the next start undoes (see recovery.ts). In-process
 * failures unwind the same stack, last first, each undo retried a few times and every
 * failure logged without stopping the others. On success the stack is dropped.
 *
 * Undos are idempotent: a resource that was never made (the kill came between the journal
 * write and the step) or is already gone counts as undone.
 */
import type { Logger } from '../obs/logger';
import type { UndoAction } from './undo-action';

export type { UndoAction } from './undo-action';

/** Where the durable undos of one operation go (the op journal), and how they are run. */
export interface DurableUndo {
  /** appends `action` to the operation's journal; resolves once it is written */
  append(action: UndoAction): Promise<void>;
  /** runs one recorded undo (the same code a recovery after a crash runs) */
  run(action: UndoAction): Promise<void>;
  /** a fault-injection point of this operation (tests only; a no-op otherwise) */
  point(): void;
  /** the operation is complete and committed: its journal goes */
  finish(): Promise<void>;
}

interface Undo {
  what: string;
  fn: () => Promise<void> | void;
}

export class CleanupStack {
  private readonly undos: Undo[] = [];

  constructor(
    private readonly log: Logger,
    private readonly durable: DurableUndo | null = null,
  ) {}

  /** Registers how to undo `what` in this process only (names, maps: nothing survives a crash). */
  push(what: string, fn: () => Promise<void> | void): void {
    this.undos.push({ what, fn });
  }

  /**
   * Writes the undo of a resource to the journal BEFORE the caller makes it, then registers
   * it (with `live` as the in-process undo when it knows more than the record, e.g. a
   * process handle). Without a journal it only registers.
   */
  async record(action: UndoAction, live?: () => Promise<void> | void): Promise<void> {
    const what = describe(action);
    if (this.durable) {
      const durable = this.durable;
      durable.point();
      await durable.append(action);
      durable.point();
      this.undos.push({ what, fn: live ?? (() => durable.run(action)) });
    } else if (live) {
      this.undos.push({ what, fn: live });
    }
  }

  /** A fault-injection point between two steps that record nothing (e.g. before a persist). */
  point(): void {
    this.durable?.point();
  }

  get size(): number {
    return this.undos.length;
  }

  /**
   * Forgets every undo: the operation succeeded and its record (the commit point) is on
   * disk, so it owns its resources; the journal is removed.
   */
  async commit(): Promise<void> {
    this.undos.length = 0;
    if (this.durable) {
      this.durable.point();
      // A journal left behind is harmless: the record on disk tells a recovery the
      // operation was complete.
      await this.durable.finish().catch((e: unknown) => this.log.error({ err: e }, 'cannot remove the operation journal'));
      this.durable.point();
    }
  }

  /**
   * Runs every undo, last first, retrying each up to `attempts` times with a short backoff.
   * Resolves to the descriptions of the undos that still failed (empty when clean). The
   * journal is removed only when every undo succeeded; otherwise the next start retries.
   */
  async unwind(attempts = 3): Promise<string[]> {
    const failed: string[] = [];
    while (this.undos.length > 0) {
      const undo = this.undos.pop()!;
      let lastError: unknown = null;
      for (let i = 0; i < attempts; i++) {
        try {
          await undo.fn();
          lastError = null;
          break;
        } catch (e) {
          lastError = e;
          await new Promise((r) => setTimeout(r, 20 * 2 ** i));
        }
      }
      if (lastError !== null) {
        failed.push(undo.what);
        this.log.error({ err: lastError, undo: undo.what }, 'cleanup step failed');
      } else {
        this.log.debug({ undo: undo.what }, 'cleaned up');
      }
    }
    if (this.durable && failed.length === 0) await this.durable.finish().catch((e: unknown) => this.log.error({ err: e }, 'cannot remove the operation journal'));
    return failed;
  }
}

export function describe(a: UndoAction): string {
  switch (a.kind) {
    case 'tree':
      return `dir ${a.path}`;
    case 'file':
      return `file ${a.path}`;
    case 'mount':
      return `mount ${a.path}`;
    case 'cgroup':
      return a.keep ? `processes of cgroup ${a.path}` : `cgroup ${a.path}`;
    case 'network':
      return `network ${a.network} of ${a.request.sandboxId}`;
    case 'rootfs':
      return `rootfs dirs of ${a.containerId}`;
  }
}
