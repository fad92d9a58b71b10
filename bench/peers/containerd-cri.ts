/**
 * containerd 1.6 (Debian's package) as a CRI peer for the benchmarks: its own root, state
 * and socket in a temp dir, the CRI plugin on, the same CNI conf dir and plugins as nodecri,
 * runc through the v2 shim, and the sandbox (pause) image from a local registry.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Containerd {
  sock: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export function containerdInstalled(): boolean {
  return spawnSync('containerd', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Starts containerd in `dir`. With `cri` null, its CRI plugin is off (the image-pull bench
 * talks to it with ctr).
 */
export async function startContainerdCri(dir: string, cri: { cniConfDir: string; cniBinDir: string; pauseImage: string; registryHost: string } | null): Promise<Containerd> {
  const opts = cri;
  fs.mkdirSync(dir, { recursive: true });
  const sock = path.join(dir, 'containerd.sock');
  const config = path.join(dir, 'config.toml');
  fs.writeFileSync(
    config,
    [
      'version = 2',
      `root = "${path.join(dir, 'root')}"`,
      `state = "${path.join(dir, 'state')}"`,
      ...(opts ? [] : ['disabled_plugins = ["io.containerd.grpc.v1.cri"]']),
      '[grpc]',
      `  address = "${sock}"`,
      '[ttrpc]',
      `  address = "${sock}.ttrpc"`,
      '[debug]',
      `  address = "${sock}.debug"`,
      ...(opts
        ? [
            '[plugins."io.containerd.grpc.v1.cri"]',
            `  sandbox_image = "${opts.pauseImage}"`,
            // Root here lacks CAP_SYS_RESOURCE: the pause container's -998 would fail runc.
            '  restrict_oom_score_adj = true',
            '  [plugins."io.containerd.grpc.v1.cri".cni]',
            `    bin_dir = "${opts.cniBinDir}"`,
            `    conf_dir = "${opts.cniConfDir}"`,
            '  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
            '    runtime_type = "io.containerd.runc.v2"',
            `  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."${opts.registryHost}"]`,
            `    endpoint = ["http://${opts.registryHost}"]`,
          ]
        : []),
      '',
    ].join('\n'),
  );
  const proc = spawn('containerd', ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let log = '';
  proc.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  for (let i = 0; i < 200; i++) {
    if (fs.existsSync(sock) && spawnSync('ctr', ['-a', sock, 'version'], { stdio: 'ignore' }).status === 0) break;
    if (proc.exitCode !== null) throw new Error(`containerd exited:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    sock,
    proc,
    stop: async () => {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      // Shims outlive containerd by design: stop any left, then the mounts.
      spawnSync('sh', ['-c', `pkill -f 'containerd-shim-runc-v2.*${sock}' ; sleep 0.2; grep -o '${dir}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l`]);
    },
  };
}

/** Sum of VmRSS (KiB) of the processes whose command line matches `re`. */
export function rssOf(re: RegExp): number {
  let total = 0;
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (!re.test(cmd)) continue;
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]);
    } catch {
      // gone
    }
  }
  return total;
}
