/**
 * Pull + unpack of a ~200 MB image of 5 layers (incompressible and compressible files,
 * big and small) from a local docker-registry: nodecri through the daemon's PullImage
 * versus containerd 1.6 (`ctr images pull --plain-http`, overlayfs snapshotter) in the same
 * run, each with its own temp root. Every pull is cold: the image is removed (and its layers
 * collected) between runs. Prints each run, the medians and the ratio nodecri/containerd.
 * Usage: node dist/bench/image-pull.js [runs=5]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CriClient } from '../test/helpers/cri-client';
import { startContainerdCri, type Containerd } from './peers/containerd-cri';
import { startTestDaemon } from '../test/helpers/daemon';
import { buildImage, pushImage, type LayerEntries } from '../test/helpers/images';
import { startRegistry } from '../test/helpers/registry';
import { median } from './stats';

const MB = 1 << 20;

/** Text that gzip shrinks about 4x, unlike the random part. */
function compressible(n: number, seed: number): Buffer {
  const words = ['container', 'runtime', 'kubelet', 'overlay', 'layer', 'digest', 'registry', 'manifest', 'sandbox', 'cgroup'];
  const parts: string[] = [];
  let len = 0;
  let x = seed;
  while (len < n) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const w = `${words[x % words.length]}-${x % 9973} `;
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

/** One layer of ~40 MB: a 12 MB random file, 8 MB of random 256 KiB files, 20 MB of text in files of 1 MB and 16 KiB. */
function benchLayer(i: number): LayerEntries {
  const e: LayerEntries = [{ name: `l${i}/`, type: 'directory', mode: 0o755 }];
  e.push({ name: `l${i}/big.bin`, type: 'file', mode: 0o644, data: randomBytes(12 * MB) });
  for (let k = 0; k < 32; k++) e.push({ name: `l${i}/rand/${k}.bin`, type: 'file', mode: 0o644, data: randomBytes(256 * 1024) });
  for (let k = 0; k < 16; k++) e.push({ name: `l${i}/text/${k}.txt`, type: 'file', mode: 0o644, data: compressible(MB, i * 100 + k) });
  for (let k = 0; k < 256; k++) e.push({ name: `l${i}/small/${k}.txt`, type: 'file', mode: 0o644, data: compressible(16 * 1024, i * 1000 + k) });
  return e;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 5);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-bench-pull-'));
  const reg = await startRegistry();
  const cleanups: Array<() => Promise<void>> = [async () => reg.stop()];
  try {
    process.stdout.write('building and pushing a 5-layer image...\n');
    const img = buildImage([0, 1, 2, 3, 4].map(benchLayer));
    const compressed = img.layers.reduce((n, l) => n + l.blob.length, 0);
    await pushImage(reg.host, 'bench/big', 'v1', img);
    const ref = `${reg.host}/bench/big:v1`;
    process.stdout.write(`image ${ref}: 5 layers, ~200 MB unpacked, ${(compressed / MB).toFixed(0)} MiB compressed\n`);

    const d = await startTestDaemon({
      dropIns: { 'bench.toml': `[image]\npull_timeout = 600\n[[image.registries]]\nlocation = "${reg.host}"\ninsecure = true\n` },
    });
    cleanups.push(() => d.cleanup());
    const client = new CriClient(d.socket);
    cleanups.push(async () => client.close());

    const haveCtr = spawnSync('ctr', ['--version'], { stdio: 'ignore' }).status === 0;
    let ctr: Containerd | null = null;
    if (haveCtr) {
      const cdir = path.join(base, 'containerd');
      fs.mkdirSync(cdir);
      ctr = await startContainerdCri(cdir, null);
      cleanups.push(ctr.stop);
    } else {
      process.stdout.write('containerd/ctr not installed (apt-get install containerd): nodecri only\n');
    }

    const ours: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await client.call('PullImage', { image: { image: ref } });
      ours.push((performance.now() - t0) / 1000);
      await client.call('RemoveImage', { image: { image: ref } });
      if (ctr) {
        const t1 = performance.now();
        const r = spawnSync('ctr', ['-a', ctr.sock, '-n', 'bench', 'images', 'pull', '--plain-http', ref], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`ctr pull failed: ${r.stderr}`);
        theirs.push((performance.now() - t1) / 1000);
        spawnSync('ctr', ['-a', ctr.sock, '-n', 'bench', 'images', 'rm', '--sync', ref], { stdio: 'ignore' });
      }
      process.stdout.write(`run ${i + 1}: nodecri ${ours[i].toFixed(2)} s${ctr ? `, containerd ${theirs[i].toFixed(2)} s` : ''}\n`);
    }
    const m = median(ours);
    process.stdout.write(`\nnodecri median:    ${m.toFixed(2)} s (${(compressed / MB / m).toFixed(0)} MiB/s compressed)\n`);
    if (ctr) {
      const c = median(theirs);
      process.stdout.write(`containerd median: ${c.toFixed(2)} s\nratio nodecri/containerd: ${(m / c).toFixed(2)}x (target <= 0.8x)\n`);
    }
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    fs.rmSync(base, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
