#!/usr/bin/env node
/**
 * The nodecri command line: `nodecri` / `nodecri daemon` runs the CRI server; `version`
 * and `config` print. Daemon flags follow CRI-O's names where the meaning is the same.
 */
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { ConfigError, defaultConfig, loadConfig, loadConfigSync, loadOptionsFromFlags, renderToml, type ConfigFlags } from './config';
import { startDaemon } from './daemon';
import { restartDaemon } from './restart';
import { ImageService, type ImageRecord } from './image/service';
import { createLogger, logLevels } from './obs/logger';
import { addonVersion } from './native/probe';
import { keeperBinary } from './native/keeper';
import { daemonReexec } from './native/reexec';
import { exitsDir, keeperFdVar } from './linux/keeper';
import { criApiVersion, packageVersion, runtimeName } from './version';

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** The options that shape the effective configuration, shared by `daemon` and `config`. */
function withConfigOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'configuration file (default /etc/nodecri/nodecri.toml)')
    .option('--config-dir <dir>', 'drop-in directory, *.toml applied in lexical order (default /etc/nodecri/nodecri.d)')
    .option('--root <dir>', 'persistent state and images (default /var/lib/nodecri)')
    .option('--runroot <dir>', 'runtime state (default /run/nodecri)')
    .option('--listen <path>', 'CRI unix socket (default /run/nodecri/nodecri.sock)')
    .addOption(new Option('--log-level <level>', 'log level').choices(logLevels))
    .option('--cni-config-dir <dir>', 'CNI network configuration directory')
    .option('--cni-plugin-dir <dir>', 'CNI plugin directory (repeat for several)', collect)
    .option('--metrics-address <host:port>', 'serve /metrics on this address ("" = off)')
    .option('--streaming-address <host:port>', 'streaming server address');
}

/** Prints a start-up failure in one line (config errors already name file and key). */
function fail(e: unknown): never {
  const msg = e instanceof ConfigError ? e.message : e instanceof Error ? e.message : String(e);
  process.stderr.write(`nodecri: ${msg}\n`);
  process.exit(1);
}

/**
 * libuv's pool (4 threads unless told) runs fs calls, DNS and the addon's clones; it reads
 * UV_THREADPOOL_SIZE once, when it starts, i.e. at the first async fs call. So the size
 * (`threadpool_size`) is read here, synchronously, before anything uses the pool. A
 * UV_THREADPOOL_SIZE the operator set wins; one we set ourselves (the daemon re-execs
 * with its environment) is replaced by the config's value again.
 */
function sizeThreadPool(flags: ConfigFlags): void {
  if (process.env.UV_THREADPOOL_SIZE !== undefined && process.env.NODECRI_THREADPOOL_FROM_CONFIG !== '1') return;
  let size: number;
  try {
    size = loadConfigSync(loadOptionsFromFlags(flags)).config.threadpoolSize;
  } catch {
    size = defaultConfig().threadpoolSize; // startDaemon reports the config error
  }
  process.env.UV_THREADPOOL_SIZE = String(size);
  process.env.NODECRI_THREADPOOL_FROM_CONFIG = '1';
}

/**
 * Becomes nodecri-keeper in place (same pid), which runs this same command line as its
 * child (src/linux/keeper.ts), unless the daemon already runs under one or the config
 * turns it off. Returns only when it does not exec.
 */
async function execKeeper(flags: ConfigFlags): Promise<void> {
  if (process.env[keeperFdVar] !== undefined) return;
  const { config } = await loadConfig(loadOptionsFromFlags(flags)).catch(fail);
  if (!config.keeper) return;
  let keeper: string;
  try {
    keeper = keeperBinary();
  } catch (e) {
    fail(e); // the addon is not built: the daemon could not run either
  }
  if (!fs.existsSync(keeper)) {
    process.stderr.write(`nodecri: ${keeper} is missing (run npm run build:native): running without a keeper\n`);
    return;
  }
  fs.mkdirSync(config.runroot, { recursive: true, mode: 0o711 });
  const argv = [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const env = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
  try {
    daemonReexec(keeper, [keeper, exitsDir(config.runroot), process.execPath, ...argv], env);
  } catch (e) {
    process.stderr.write(`nodecri: cannot exec ${keeper} (${(e as Error).message}): running without a keeper\n`);
  }
}

/**
 * The daemon and `restart` need root (namespaces, mounts, cgroups, and the state dirs under
 * /run and /var/lib): said in one line, before anything fails half-way with EACCES.
 */
function requireRoot(): void {
  if (process.geteuid?.() === 0) return;
  process.stderr.write('nodecri must run as root\n');
  process.exit(1);
}

async function runDaemon(flags: ConfigFlags): Promise<void> {
  requireRoot();
  // The pool size first: the keeper's config read below is the first pool work.
  sizeThreadPool(flags);
  await execKeeper(flags);
  const daemon = await startDaemon(loadOptionsFromFlags(flags)).catch(fail);
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      daemon.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    daemon.log.info({ signal }, 'signal received');
    daemon.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        daemon.log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => void daemon.reload());
  process.on('SIGUSR2', () => void daemon.handOver());
}

const program = new Command('nodecri').description('a Kubernetes CRI v1 container runtime').version(packageVersion, '-v, --version');

withConfigOptions(program.command('daemon', { isDefault: true }).description('run the CRI server (the default)')).action(runDaemon);

withConfigOptions(program.command('restart').description('restart the running daemon in place; containers and their logs carry on'))
  .option('--timeout <seconds>', 'how long to wait for the new daemon', '60')
  .action(async (flags: ConfigFlags & { timeout: string }) => {
    requireRoot();
    const loaded = await loadConfig(loadOptionsFromFlags(flags)).catch(fail);
    await restartDaemon(loaded.config.runroot, loaded.config.listen, Number(flags.timeout) * 1000).catch(fail);
  });

program
  .command('version')
  .description('print the version of nodecri, its addon and the CRI it serves')
  .action(() => {
    // Without the addon the other two lines are still true: printed, and the load error
    // said on stderr (exit code 1), rather than a stack.
    let addon: string;
    let missing: Error | null = null;
    try {
      addon = addonVersion();
    } catch (e) {
      missing = e as Error;
      addon = 'missing';
    }
    process.stdout.write(`nodecri ${packageVersion}\naddon ${addon}\nCRI runtime.${criApiVersion}\n`);
    if (missing) fail(missing);
  });

withConfigOptions(program.command('config').description('print the effective configuration as TOML'))
  .option('--default', 'print the defaults instead')
  .action(async (flags: ConfigFlags & { default?: boolean }) => {
    if (flags.default) {
      process.stdout.write(renderToml(defaultConfig()));
      return;
    }
    const loaded = await loadConfig(loadOptionsFromFlags(flags)).catch(fail);
    process.stdout.write(renderToml(loaded.config));
  });

/**
 * The image store under the configured root, opened by a one-shot command. It works beside
 * a running daemon: writes are atomic, and the daemon sees new records and spares what the
 * command holds.
 */
async function openImages(flags: ConfigFlags): Promise<ImageService> {
  const { config } = await loadConfig(loadOptionsFromFlags(flags));
  return ImageService.open({
    root: config.root,
    config: () => config.image,
    log: createLogger('warn'),
    metrics: null,
    userAgent: `${runtimeName}/${packageVersion}`,
    daemon: false,
  });
}

function formatSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)}${units[u]}`;
}

/** One line per tag (or one "<none>" line), like crictl images. */
function imageRows(records: ImageRecord[]): string[][] {
  const rows: string[][] = [];
  for (const r of records) {
    const id = r.id.slice(7, 19);
    const size = formatSize(r.size);
    if (r.repoTags.length === 0) rows.push(['<none>', '<none>', id, size]);
    for (const t of r.repoTags) {
      const colon = t.lastIndexOf(':');
      rows.push([t.slice(0, colon), t.slice(colon + 1), id, size]);
    }
  }
  return rows.sort((a, b) => a[0].localeCompare(b[0]) || a[1].localeCompare(b[1]));
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [header, ...rows])
    process.stdout.write(
      `${r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd()}\n`,
    );
}

const image = program.command('image').description('the image store, without a daemon (works beside a running one)');

withConfigOptions(image.command('import').argument('<path>', 'an OCI image layout (directory or tar) or a docker save archive'))
  .description('load images from an archive into the store, with no network')
  .option('--tag <ref>', 'also tag every imported image with this reference')
  .action(async (input: string, flags: ConfigFlags & { tag?: string }) => {
    const images = await openImages(flags).catch(fail);
    try {
      const records = await images.importPath(input, flags.tag ?? null, new AbortController().signal);
      for (const r of records) process.stdout.write(`imported ${r.id}${r.repoTags.length > 0 ? ` (${r.repoTags.join(', ')})` : ''}\n`);
    } catch (e) {
      fail(e);
    } finally {
      images.close();
    }
  });

withConfigOptions(image.command('ls'))
  .description('list the images in the store')
  .option('-q, --quiet', 'print image ids only')
  .action(async (flags: ConfigFlags & { quiet?: boolean }) => {
    const images = await openImages(flags).catch(fail);
    try {
      const records = await images.list(null);
      if (flags.quiet) for (const r of records) process.stdout.write(`${r.id}\n`);
      else printTable(['IMAGE', 'TAG', 'IMAGE ID', 'SIZE'], imageRows(records));
    } finally {
      images.close();
    }
  });

program.parseAsync(process.argv).catch(fail);
