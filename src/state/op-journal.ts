/**
 * Operation journals: one JSON-lines file per operation in flight under
 * `<runroot>/ops/`, its header line first (which operation, on which object), then one
 * line per undo, each appended before the step it undoes. Removed when the operation is
 * committed or fully undone; any file left is an operation a crash interrupted.
 *
 * Not fsync'ed: they live on the runroot (a tmpfs on a node), beside the pins, mounts and
 * cgroups they describe, which a power cut or reboot removes with them; against a killed
 * process a completed write(2) is enough. A torn last line (a power cut on a disk runroot)
 * is ignored: its step had not started.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { UndoAction } from '../domain/undo-action';

export type OpKind = 'RunPodSandbox' | 'StopPodSandbox' | 'RemovePodSandbox' | 'CreateContainer' | 'StartContainer' | 'RemoveContainer';

export interface OpHeader {
  op: OpKind;
  /** the sandbox or container the operation is about */
  id: string;
  /** when it began, RFC 3339 */
  at: string;
}

export interface PendingOp {
  file: string;
  header: OpHeader;
  undos: UndoAction[];
}

export class OpJournal {
  private closed = false;

  constructor(
    readonly file: string,
    private readonly fh: fsp.FileHandle,
  ) {}

  async append(action: UndoAction): Promise<void> {
    await this.fh.write(`${JSON.stringify({ undo: action })}\n`);
  }

  /** Removes the journal: the operation is complete (or fully undone). */
  async finish(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await fsp.rm(this.file, { force: true });
    await this.fh.close();
  }
}

export class OpJournals {
  private seq = 0;

  constructor(readonly dir: string) {}

  async begin(op: OpKind, id: string): Promise<OpJournal> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, `${id}.${op}.${process.pid}.${++this.seq}.jsonl`);
    const fh = await fsp.open(file, 'wx', 0o600);
    try {
      const header: OpHeader = { op, id, at: new Date().toISOString() };
      await fh.write(`${JSON.stringify(header)}\n`);
    } catch (e) {
      await fh.close();
      await fsp.rm(file, { force: true });
      throw e;
    }
    return new OpJournal(file, fh);
  }

  /** Every journal left by an earlier daemon, oldest first. Unreadable ones come back with no undos. */
  async pending(): Promise<PendingOp[]> {
    let names: string[];
    try {
      names = (await fsp.readdir(this.dir)).filter((n) => n.endsWith('.jsonl'));
    } catch {
      return [];
    }
    const out: Array<PendingOp & { mtime: number }> = [];
    for (const n of names) {
      const file = path.join(this.dir, n);
      const [text, st] = await Promise.all([fsp.readFile(file, 'utf8').catch(() => ''), fsp.stat(file).catch(() => null)]);
      const lines = text.split('\n').filter((l) => l !== '');
      let header: OpHeader | null = null;
      const undos: UndoAction[] = [];
      for (const [i, l] of lines.entries()) {
        let v: unknown;
        try {
          v = JSON.parse(l);
        } catch {
          break; // a torn last line
        }
        if (i === 0) header = v as OpHeader;
        else if (v && typeof v === 'object' && 'undo' in v) undos.push((v as { undo: UndoAction }).undo);
      }
      if (!header) {
        // Killed between creating the file and writing its header: nothing was done yet.
        await fsp.rm(file, { force: true });
        continue;
      }
      out.push({ file, header, undos, mtime: st?.mtimeMs ?? 0 });
    }
    out.sort((a, b) => a.mtime - b.mtime || a.file.localeCompare(b.file));
    return out.map(({ file, header, undos }) => ({ file, header, undos }));
  }
}
