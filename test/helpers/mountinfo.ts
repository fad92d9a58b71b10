/**
 * The mount table of this process, for the tests' checks: the daemon's own parser
 * (src/linux/mountinfo.ts) over a synchronous read, so that a leak check or an assertion
 * sees mounts exactly as the daemon decodes them (octal escapes, optional fields).
 */
import fs from 'node:fs';
import { parseMountInfo, type MountInfoEntry } from '../../src/linux/mountinfo';

export type { MountInfoEntry };

/** This process's mounts, or those of the mountinfo text given (a container's). */
export function mountTable(text: string = fs.readFileSync('/proc/self/mountinfo', 'utf8')): MountInfoEntry[] {
  return parseMountInfo(text);
}
