/**
 * What `[cgroup] favor_dynmods` (remounting cgroup2 with favordynmods) costs and buys on this
 * machine: fork+exit (which take the kernel's cgroup_threadgroup_rwsem for reading) and a
 * task move by a cgroup.procs write (which takes it for writing, and, unless the lock is in
 * its slow-reader mode, waits for an RCU grace period), with the option off and on,
 * alternating, R rounds. Moves are 50 ms apart, as container starts are: moves in a tight
 * loop share one grace period and hide the wait.
 *
 * Linux 6.18 switches to per-threadgroup locking the first time favordynmods is set and does
 * not switch back when it is cleared, so on such a kernel only the measurement taken before
 * the first enable since boot shows "off"; the bench says when its "off" rounds cannot be
 * trusted (the first off round much slower than the later ones).
 *
 *   node dist/bench/favordynmods.js [rounds=3] [forks=5000] [moves=30]
 * Needs root. It leaves the mount as it found it (as far as the kernel lets it).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readMountInfo } from '../src/linux/mountinfo';
import { median } from './stats';

const rounds = Number(process.argv[2] ?? 3);
const forks = Number(process.argv[3] ?? 5000);
const moves = Number(process.argv[4] ?? 30);

/** Remounts `mountPoint` with exactly `options` (util-linux would otherwise merge the current ones). */
function remount(mountPoint: string, options: string[]): void {
  execFileSync('mount', ['--options-source=disable', '-o', ['remount', ...options].join(','), mountPoint]);
}

async function main(): Promise<void> {
  const cg2 = (await readMountInfo()).find((m) => m.fstype === 'cgroup2');
  if (!cg2) throw new Error('no cgroup2 mount on this machine');
  const found = cg2.superOptions.filter((o) => o !== 'rw' && o !== 'ro');
  const base = found.filter((o) => o !== 'favordynmods');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-bench-'));
  const a = path.join(cg2.mountPoint, `nodecri-bench-fdm-${process.pid}-a`);
  const b = path.join(cg2.mountPoint, `nodecri-bench-fdm-${process.pid}-b`);
  try {
    const bin = path.join(dir, 'favordynmods');
    execFileSync('cc', ['-O2', '-Wall', '-o', bin, path.join(__dirname, '..', '..', 'bench', 'favordynmods.c')]);
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    const run = (...args: string[]) => Number(execFileSync(bin, args, { encoding: 'utf8' }).trim());
    const samples = { off: { fork: [] as number[], move: [] as number[] }, on: { fork: [] as number[], move: [] as number[] } };
    for (let r = 0; r < rounds; r++) {
      for (const mode of ['off', 'on'] as const) {
        remount(cg2.mountPoint, mode === 'on' ? [...base, 'favordynmods'] : base);
        samples[mode].fork.push(run('fork', String(forks)));
        samples[mode].move.push(run('move', String(moves), a, b, '50'));
      }
    }
    const us = (ns: number) => (ns / 1000).toFixed(1);
    const firstOff = samples.off.move[0]!;
    const laterOff = median(samples.off.move.slice(1));
    const oneWay = rounds > 1 && firstOff > 5 * laterOff;
    const result = {
      bench: 'favordynmods',
      kernel: os.release(),
      foundWithFavordynmods: found.includes('favordynmods'),
      samplesNs: samples,
      forkExitUs: { off: Number(us(median(samples.off.fork))), on: Number(us(median(samples.on.fork))) },
      moveUs: { off: Number(us(oneWay ? firstOff : median(samples.off.move))), on: Number(us(median(samples.on.move))) },
      offOnlyBeforeFirstEnable: oneWay,
    };
    console.log(JSON.stringify(result));
    console.log(`fork+exit+wait: off ${result.forkExitUs.off} µs, on ${result.forkExitUs.on} µs (median of ${rounds} rounds of ${forks})`);
    console.log(`task move (cgroup.procs write, 50 ms apart): off ${result.moveUs.off} µs, on ${result.moveUs.on} µs`);
    if (oneWay) console.log('the kernel kept its per-threadgroup locking after favordynmods was cleared: "off" is the first round only');
    else if (found.includes('favordynmods')) console.log('favordynmods was already on when the bench started: on a kernel that keeps it, "off" may read as "on"');
  } finally {
    remount(cg2.mountPoint, found);
    // a cgroup is removed by rmdir (its interface files cannot be unlinked)
    for (const d of [a, b]) if (fs.existsSync(d)) fs.rmdirSync(d);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
