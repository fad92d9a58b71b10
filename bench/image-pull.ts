/**
 * Cold image pull through CRI PullImage: nodecri against containerd 1.6's CRI (the runtime
 * pair of bench/peers/runtimes.ts, one local docker-registry on loopback), and the floor in
 * the same run: the same layer blobs fetched over HTTP and gunzipped to files on the same
 * disk, all layers in parallel, by a plain Node loop, each file fsync'd once at its end.
 *
 * Each image is 4 layers of random data in 1 MiB files (25 MiB and 50 MiB layers, sizes set
 * by --sizes), built by test/helpers/images.ts. Every pull is cold: the image is removed
 * through RemoveImage after it (both runtimes collect the layers of an image they remove;
 * containerd's content store is checked to have dropped them). Per round and size, the
 * three are run one after the other in an order that rotates by round. Prints every sample,
 * the medians (bench/stats.ts) and the ratios nodecri/containerd and nodecri/floor; writes
 * every sample as JSON with --out.
 * Usage: node dist/bench/image-pull.js [rounds=5] [--sizes=25,50] [--out=FILE] [--no-containerd]
 *   NODECRI_PULL_CONFIG="TOML" adds to nodecri's config (A/B of [image] settings).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { buildImage, pushImage, type BuiltImage, type LayerEntries } from '../test/helpers/images';
import { machine, startRuntimePair, type BenchRuntime } from './peers/runtimes';
import { median, summarize } from './stats';

const MiB = 1 << 20;
const LAYERS = 4;

const flag = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const rounds = Number(positional[0] ?? 5);
const sizes = (flag('sizes') ?? '25,50').split(',').map(Number);
const out = flag('out');
const withContainerd = !process.argv.includes('--no-containerd');

/** One layer of `mib` MiB of random data, in 1 MiB files under one directory. */
function randomLayer(i: number, mib: number): LayerEntries {
  const e: LayerEntries = [{ name: `l${i}/`, type: 'directory', mode: 0o755 }];
  for (let k = 0; k < mib; k++) e.push({ name: `l${i}/${k}.bin`, type: 'file', mode: 0o644, data: randomBytes(MiB) });
  return e;
}

/** GET one blob from the registry and gunzip it into `file`, fsync'd at the end. */
async function fetchGunzip(host: string, repo: string, digest: string, file: string): Promise<void> {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(`http://${host}/v2/${repo}/blobs/${digest}`, resolve).once('error', reject);
  });
  if (res.statusCode !== 200) throw new Error(`blob ${digest}: HTTP ${res.statusCode}`);
  const fd = fs.openSync(file, 'wx');
  try {
    await pipeline(res, zlib.createGunzip(), fs.createWriteStream('', { fd, autoClose: false }));
    await new Promise<void>((resolve, reject) => fs.fsync(fd, (e) => (e ? reject(e) : resolve())));
  } finally {
    fs.closeSync(fd);
  }
}

/** Every layer of `img` fetched and gunzipped at once into a fresh dir; returns ms. */
async function floor(host: string, repo: string, img: BuiltImage, dir: string): Promise<number> {
  fs.mkdirSync(dir);
  const t0 = performance.now();
  await Promise.all(img.layers.map((l, i) => fetchGunzip(host, repo, l.digest, path.join(dir, `${i}.tar`))));
  const ms = performance.now() - t0;
  fs.rmSync(dir, { recursive: true, force: true });
  return ms;
}

/** containerd's k8s.io content store still holding any of the image's layers. */
function containerdHolds(sock: string, img: BuiltImage): string[] {
  const r = spawnSync('ctr', ['-a', sock, '-n', 'k8s.io', 'content', 'ls', '-q'], { encoding: 'utf8' });
  const have = new Set(r.stdout.split('\n'));
  return img.layers.map((l) => l.digest).filter((d) => have.has(d));
}

async function pullCold(rt: BenchRuntime, ref: string): Promise<number> {
  const t0 = performance.now();
  await rt.client.call('PullImage', { image: { image: ref } });
  const ms = performance.now() - t0;
  await rt.client.call('RemoveImage', { image: { image: ref } });
  return ms;
}

async function main(): Promise<void> {
  const pair = await startRuntimePair({ containerd: withContainerd, nodecriConfig: process.env.NODECRI_PULL_CONFIG ?? '' });
  const host = pair.image.split('/')[0];
  const containerdSock = path.join(pair.dir, 'containerd', 'containerd.sock');
  const samples: Record<string, Record<string, number[]>> = {};
  try {
    const images: Array<{ mib: number; repo: string; ref: string; img: BuiltImage }> = [];
    for (const mib of sizes) {
      const img = buildImage(Array.from({ length: LAYERS }, (_, i) => randomLayer(i, mib)));
      const repo = `bench/random-${mib}`;
      await pushImage(host, repo, 'v1', img);
      const compressed = img.layers.reduce((n, l) => n + l.blob.length, 0);
      process.stdout.write(`${host}/${repo}:v1: ${LAYERS} layers of ${mib} MiB random data in 1 MiB files, ${(compressed / MiB).toFixed(1)} MiB compressed\n`);
      images.push({ mib, repo, ref: `${host}/${repo}:v1`, img });
      samples[`${mib}`] = { nodecri: [], containerd: [], floor: [] };
    }
    for (let round = 0; round < rounds; round++) {
      for (const { mib, repo, ref, img } of images) {
        const s = samples[`${mib}`];
        const kinds = ['nodecri', 'containerd', 'floor'].filter((k) => k !== 'containerd' || pair.runtimes.length > 1);
        const order = kinds.map((_, i) => kinds[(i + round) % kinds.length]);
        const line: string[] = [];
        for (const kind of order) {
          let ms: number;
          if (kind === 'floor') ms = await floor(host, repo, img, path.join(pair.dir, `floor-${mib}-${round}`));
          else {
            const rt = pair.runtimes.find((r) => r.name === kind) as BenchRuntime;
            ms = await pullCold(rt, ref);
            if (kind === 'containerd') {
              const left = containerdHolds(containerdSock, img);
              if (left.length > 0) throw new Error(`containerd kept ${left.length} layers after RemoveImage: the next pull would not be cold`);
            }
          }
          s[kind].push(ms);
          line.push(`${kind} ${ms.toFixed(0)} ms`);
        }
        process.stdout.write(`round ${round + 1}, ${LAYERS} x ${mib} MiB: ${line.join(', ')}\n`);
      }
    }
    process.stdout.write('\n| image | nodecri | containerd | floor | nodecri/containerd | nodecri/floor |\n|---|---|---|---|---|---|\n');
    const result: Record<string, unknown> = {};
    for (const { mib } of images) {
      const s = samples[`${mib}`];
      const n = median(s.nodecri);
      const c = median(s.containerd);
      const f = median(s.floor);
      process.stdout.write(`| ${LAYERS} x ${mib} MiB | ${n.toFixed(0)} ms | ${c.toFixed(0)} ms | ${f.toFixed(0)} ms | ${(n / c).toFixed(2)} | ${(n / f).toFixed(2)} |\n`);
      result[`${LAYERS}x${mib}MiB`] = {
        nodecri: summarize(s.nodecri),
        containerd: summarize(s.containerd),
        floor: summarize(s.floor),
        ratioContainerd: n / c,
        ratioFloor: n / f,
        samples: s,
      };
    }
    process.stdout.write('targets: nodecri/containerd <= 0.8, nodecri/floor <= 1.3\n');
    if (out) {
      fs.writeFileSync(out, `${JSON.stringify({ bench: 'image-pull', rounds, nodecriConfig: process.env.NODECRI_PULL_CONFIG ?? '', machine: machine(), result }, null, 2)}\n`);
      process.stdout.write(`wrote ${out}\n`);
    }
  } finally {
    await pair.cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
