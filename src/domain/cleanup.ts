/**
 * The undo stack of a multi-step creation (after CRI-O's resource cleaner): each step that
 * made something pushes a described undo the moment the thing exists; on failure the undos
 * run in reverse order, each retried a few times, and every failure is logged without
 * stopping the others. On success the stack is dropped.
 */
import type { Logger } from '../obs/logger';

interface Undo {
  what: string;
  fn: () => Promise<void> | void;
}

export class CleanupStack {
  private readonly undos: Undo[] = [];

  constructor(private readonly log: Logger) {}

  /** Registers how to undo `what`; call right after it was created. */
  push(what: string, fn: () => Promise<void> | void): void {
    this.undos.push({ what, fn });
  }

  get size(): number {
    return this.undos.length;
  }

  /** Forgets every undo: the creation succeeded and now owns its resources. */
  commit(): void {
    this.undos.length = 0;
  }

  /**
   * Runs every undo, last first, retrying each up to `attempts` times with a short backoff.
   * Resolves to the descriptions of the undos that still failed (empty when clean).
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
    return failed;
  }
}
