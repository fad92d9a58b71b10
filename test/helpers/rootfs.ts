/**
 * A throwaway container root filesystem built from the host's static busybox: the binary
 * at /bin/busybox, a symlink per applet, /etc/passwd and /etc/group with root and a user
 * 1000, and empty mount-point dirs. Small (one 2 MB binary) and fast to build per test.
 */
import { staticBusybox } from './busybox';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BUSYBOX = staticBusybox;
let applets: string[] | null = null;

function busyboxApplets(): string[] {
  if (applets === null) {
    applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' })
      .split('\n')
      .map((s) => s.trim())
      .filter((s) => s !== '' && s !== 'busybox' && !s.includes('/'));
  }
  return applets;
}

/** Builds a rootfs under `dir` (created if needed) and returns its path. */
export function buildRootfs(dir: string): string {
  const root = path.join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'home/user']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.copyFileSync(BUSYBOX, path.join(root, 'bin', 'busybox'));
  fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  for (const a of busyboxApplets()) {
    const link = path.join(root, 'bin', a);
    if (!fs.existsSync(link)) fs.symlinkSync('busybox', link);
  }
  fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n');
  fs.writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nuser:x:1000:\n');
  fs.chownSync(path.join(root, 'home', 'user'), 1000, 1000);
  return root;
}

/** A fresh temp dir for one test. */
export function makeTempDir(prefix = 'nodecri-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
