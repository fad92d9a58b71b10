/**
 * pinNamespaces(net+ipc+uts) against the shell way of doing the same from a Node daemon:
 * create the pin files, then exec `unshare --net=FILE --ipc=FILE --uts=FILE true`, which
 * unshares and bind-mounts each namespace onto its file (util-linux's persistent
 * namespaces). Both are timed from Node, awaited, one at a time, pins only: the unpin of
 * every run happens outside the timed part. Medians over RUNS runs each (default 200),
 * alternating the two in blocks so that host drift hits both alike.
 *
 *   node dist/bench/pin-namespaces.js [runs] [parent-dir]
 *
 * The pin files are created under parent-dir (default os.tmpdir()); creating files costs
 * differently on disk filesystems and on tmpfs, where a runtime keeps its pins (/run).
 */
import { execFile as execFileCb } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { pinNamespaces, unpinNamespace } from '../src/native/namespaces';
import { quantile } from './stats';

const execFile = promisify(execFileCb);
const types = ['net', 'ipc', 'uts'] as const;

async function viaAddon(dir: string): Promise<void> {
  await pinNamespaces({ types: [...types], dir, sysctls: {}, uidMap: null, gidMap: null });
}

async function viaShell(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await Promise.all(types.map((t) => fs.writeFile(path.join(dir, t), '')));
  await execFile('unshare', [...types.map((t) => `--${t}=${path.join(dir, t)}`), 'true']);
}

async function unpinDir(dir: string): Promise<void> {
  for (const t of types) await unpinNamespace(path.join(dir, t));
  await fs.rmdir(dir);
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 200);
  const parent = process.argv[3] ?? os.tmpdir();
  const root = await fs.mkdtemp(path.join(parent, 'ncri-bench-'));
  const times: Record<'addon' | 'shell', number[]> = { addon: [], shell: [] };
  let n = 0;
  const once = async (kind: 'addon' | 'shell', record: boolean): Promise<void> => {
    const dir = path.join(root, `${kind}-${n++}`);
    const t0 = performance.now();
    await (kind === 'addon' ? viaAddon(dir) : viaShell(dir));
    const t = performance.now() - t0;
    await unpinDir(dir);
    if (record) times[kind].push(t);
  };
  try {
    for (let i = 0; i < 10; i++) {
      await once('addon', false);
      await once('shell', false);
    }
    const block = 20;
    for (let done = 0; done < runs; done += block) {
      const k = Math.min(block, runs - done);
      for (let i = 0; i < k; i++) await once('addon', true);
      for (let i = 0; i < k; i++) await once('shell', true);
    }
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
  const { addon, shell } = times;
  const fmt = (s: number[]): string => `median ${quantile(s, 0.5).toFixed(3)} ms  p10 ${quantile(s, 0.1).toFixed(3)}  p90 ${quantile(s, 0.9).toFixed(3)}`;
  const fsType = (await execFile('stat', ['-f', '-c', '%T', parent])).stdout.trim();
  console.log(`pin net+ipc+uts, ${runs} runs each, pins under ${parent} (${fsType}); node ${process.version}, linux ${os.release()}`);
  console.log(`  pinNamespaces (addon)             ${fmt(addon)}`);
  console.log(`  unshare --net=F --ipc=F --uts=F   ${fmt(shell)}`);
  console.log(`  ratio shell/addon (medians)       ${(quantile(shell, 0.5) / quantile(addon, 0.5)).toFixed(1)}x`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
