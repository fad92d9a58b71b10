/**
 * The handoff between two images of the daemon across its in-place re-exec (same pid):
 * the old image writes what the new one cannot find on disk (fd numbers it kept open
 * across the execve) to `<runroot>/handoff.json` and names that file in NODECRI_HANDOFF;
 * the new image reads it once at start-up, before anything could inherit those fds.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ContainerHandoff } from './container/service';
import { keepAcrossExec } from './native/process';
import { writeJsonAtomic } from './state/atomic-file';

const handoffVar = 'NODECRI_HANDOFF';

interface HandoffFile extends ContainerHandoff {
  /** the image that wrote it: fd numbers mean something in this process only */
  pid: number;
}

export function handoffFile(runroot: string): string {
  return path.join(runroot, 'handoff.json');
}

/** Writes the handoff; returns the environment entry that names it for the new image. */
export async function writeHandoff(runroot: string, handoff: ContainerHandoff): Promise<Record<string, string>> {
  const file = handoffFile(runroot);
  await writeJsonAtomic(file, { pid: process.pid, ...handoff } satisfies HandoffFile);
  return { [handoffVar]: file };
}

/**
 * The handoff the previous image of this process left, or null (a cold start, or a file
 * that is not ours). Every fd it names is made close-on-exec again at once, so that no
 * child the new image spawns (a CNI plugin) inherits one. The file is removed.
 */
export async function takeHandoff(): Promise<ContainerHandoff | null> {
  const file = process.env[handoffVar];
  delete process.env[handoffVar];
  if (!file) return null;
  let parsed: HandoffFile;
  try {
    parsed = JSON.parse(await fsp.readFile(file, 'utf8')) as HandoffFile;
  } catch {
    return null;
  } finally {
    await fsp.rm(file, { force: true });
  }
  if (parsed.pid !== process.pid || typeof parsed.containers !== 'object' || parsed.containers === null) return null;
  const containers: ContainerHandoff['containers'] = {};
  for (const [id, fds] of Object.entries(parsed.containers)) {
    const entry: ContainerHandoff['containers'][string] = {};
    if (fds?.terminalStdin === true) entry.terminalStdin = true;
    for (const s of ['stdout', 'stderr', 'stdin', 'terminal'] as const) {
      const fd = fds?.[s];
      if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 3) continue;
      try {
        keepAcrossExec([fd], false);
        entry[s] = fd;
      } catch {
        // not open: a log FIFO is opened again by path (stdin and a pty master are lost)
      }
    }
    containers[id] = entry;
  }
  return { containers };
}
