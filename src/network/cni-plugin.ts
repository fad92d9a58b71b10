/**
 * Runs CNI plugins as the CNI spec (1.0) describes: one process per plugin of the network's
 * conflist, the network config on stdin with `prevResult` passed along the chain, the
 * request in CNI_* environment variables, the result (or an error object) on stdout. ADD
 * runs the chain in order, DEL in reverse with the cached result. The final ADD result is
 * cached on disk, as libcni does, so that DEL after a daemon restart gets what ADD made.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { CniNetworkConfig, CniPluginConf } from './cni-config';
import { readJson, writeJsonAtomic } from '../state/atomic-file';
import { runHostProgram, type HostRunResult } from '../native/host-spawn';

/** What a plugin may print on stdout (and on stderr); a result is a few KiB. */
const maxPluginOutput = 4 * 1024 * 1024;

export interface CniRequest {
  containerId: string;
  netnsPath: string;
  ifName: string;
  /** CNI_ARGS pairs, e.g. K8S_POD_NAMESPACE */
  args: Record<string, string>;
  /** runtimeConfig values offered to plugins that declare the capability */
  capabilities: Record<string, unknown>;
}

export interface CniIp {
  address: string;
  gateway: string | null;
  interface: number | null;
}

export interface CniResult {
  cniVersion: string;
  interfaces: { name: string; mac?: string; sandbox?: string }[];
  ips: CniIp[];
  raw: Record<string, unknown>;
}

export class CniPluginError extends Error {
  constructor(
    message: string,
    readonly plugin: string,
    readonly code: number | null,
  ) {
    super(message);
  }
}

export interface CachedResult {
  network: string;
  containerId: string;
  ifName: string;
  netnsPath: string;
  args: Record<string, string>;
  capabilities: Record<string, unknown>;
  config: Record<string, unknown>;
  result: Record<string, unknown>;
}

export interface CniPluginRunnerOptions {
  pluginDirs: string[];
  /** where ADD results are cached for DEL */
  cacheDir: string;
  /** per plugin invocation */
  timeoutMs: number;
}

function cniArgs(args: Record<string, string>): string {
  return ['IgnoreUnknown=1', ...Object.entries(args).map(([k, v]) => `${k}=${v}`)].join(';');
}

export class CniPluginRunner {
  private readonly binaries = new Map<string, string>();

  constructor(private readonly opts: CniPluginRunnerOptions) {}

  private cacheFile(network: string, containerId: string, ifName: string): string {
    return path.join(this.opts.cacheDir, `${network}-${containerId}-${ifName}.json`);
  }

  /** The plugin binary for `type`, searched in the plugin dirs in order. */
  private async findPlugin(type: string): Promise<string> {
    if (type.includes('/') || type === '' || type === '.' || type === '..') {
      throw new CniPluginError(`invalid CNI plugin type ${JSON.stringify(type)}`, type, null);
    }
    const known = this.binaries.get(type);
    if (known) return known;
    for (const dir of this.opts.pluginDirs) {
      const p = path.join(dir, type);
      try {
        await fsp.access(p, fsp.constants.X_OK);
        this.binaries.set(type, p);
        return p;
      } catch {
        // not in this dir
      }
    }
    throw new CniPluginError(`CNI plugin ${type} not found in ${this.opts.pluginDirs.join(':')}`, type, null);
  }

  /** The stdin config of one plugin of the chain. */
  private pluginConfig(net: CniNetworkConfig, plugin: CniPluginConf, req: CniRequest, prevResult: Record<string, unknown> | null): Record<string, unknown> {
    const conf: Record<string, unknown> = { ...plugin, name: net.name, cniVersion: net.cniVersion };
    delete conf.capabilities;
    const caps = (plugin.capabilities ?? {}) as Record<string, boolean>;
    const runtimeConfig: Record<string, unknown> = {};
    for (const [cap, value] of Object.entries(req.capabilities)) if (caps[cap] === true) runtimeConfig[cap] = value;
    if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
    if (prevResult) conf.prevResult = prevResult;
    return conf;
  }

  private async exec(command: 'ADD' | 'DEL' | 'CHECK', binary: string, type: string, conf: Record<string, unknown>, req: CniRequest): Promise<Record<string, unknown> | null> {
    const env = [
      `PATH=${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
      `CNI_COMMAND=${command}`,
      `CNI_CONTAINERID=${req.containerId}`,
      `CNI_NETNS=${req.netnsPath}`,
      `CNI_IFNAME=${req.ifName}`,
      `CNI_ARGS=${cniArgs(req.args)}`,
      `CNI_PATH=${this.opts.pluginDirs.join(':')}`,
    ];
    // Through the addon's spawn rather than child_process: a vfork-style spawn does not copy
    // the daemon's page tables for each of the chain's plugins (bench/cni-exec measures it).
    let run: HostRunResult;
    try {
      run = await runHostProgram({ path: binary, argv: [binary], env, stdin: Buffer.from(JSON.stringify(conf)), timeoutMs: this.opts.timeoutMs, maxOutputBytes: maxPluginOutput });
    } catch (e) {
      throw new CniPluginError(`CNI plugin ${type} ${command} could not be run: ${(e as Error).message}`, type, null);
    }
    const stdout = run.stdout.toString('utf8');
    const failed = (detail: string) => new CniPluginError(`CNI plugin ${type} ${command} failed: ${detail}`, type, run.exitCode);
    if (run.timedOut) throw failed(`timed out after ${this.opts.timeoutMs} ms`);
    if (run.overflowed) throw failed(`wrote more than ${maxPluginOutput} bytes to ${run.overflowed}`);
    if (run.exitCode !== 0) {
      // A plugin reports failures as a JSON error object on stdout; else stderr says why.
      const exit = run.signal !== null ? `killed by signal ${run.signal}` : `exit status ${run.exitCode}`;
      throw failed(pluginErrorOf(stdout) ?? (run.stderr.toString('utf8').trim() || exit));
    }
    if (command !== 'ADD' || stdout.trim() === '') return null;
    try {
      return JSON.parse(stdout) as Record<string, unknown>;
    } catch {
      throw new CniPluginError(`CNI plugin ${type} ADD printed no JSON result`, type, null);
    }
  }

  /**
   * ADD of every plugin in order. On failure the chain is deleted again (releasing what the
   * plugins that succeeded allocated) and the error is thrown.
   */
  async add(net: CniNetworkConfig, req: CniRequest): Promise<CniResult> {
    let prev: Record<string, unknown> | null = null;
    try {
      for (const plugin of net.plugins) {
        const binary = await this.findPlugin(plugin.type);
        const result = await this.exec('ADD', binary, plugin.type, this.pluginConfig(net, plugin, req, prev), req);
        if (result) prev = result;
      }
    } catch (e) {
      await this.delChain(net, req, prev).catch(() => {});
      throw e;
    }
    const raw = prev ?? { cniVersion: net.cniVersion };
    const cached: CachedResult = {
      network: net.name,
      containerId: req.containerId,
      ifName: req.ifName,
      netnsPath: req.netnsPath,
      args: req.args,
      capabilities: req.capabilities,
      config: net.raw,
      result: raw,
    };
    await fsp.mkdir(this.opts.cacheDir, { recursive: true, mode: 0o700 });
    try {
      // Like libcni's cache: written whole (rename), not fsync'ed; after a power cut the
      // netns it describes is gone too.
      await writeJsonAtomic(this.cacheFile(net.name, req.containerId, req.ifName), cached, false);
    } catch (e) {
      await this.delChain(net, req, raw).catch(() => {});
      throw e;
    }
    return parseResult(raw);
  }

  private async delChain(net: CniNetworkConfig, req: CniRequest, prev: Record<string, unknown> | null): Promise<void> {
    const errors: string[] = [];
    for (const plugin of [...net.plugins].reverse()) {
      try {
        const binary = await this.findPlugin(plugin.type);
        await this.exec('DEL', binary, plugin.type, this.pluginConfig(net, plugin, req, prev), req);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (errors.length > 0) throw new CniPluginError(errors.join('; '), 'chain', null);
  }

  /**
   * DEL of the chain of network `network`, in reverse, with the config and result cached
   * by ADD when there is one (so that a DEL after a restart, or after the conf dir changed,
   * undoes what ADD did), else with `current` if it is that network. Idempotent: plugins
   * tolerate DEL of what is gone; the cache entry is removed once DEL succeeded.
   */
  async del(network: string, current: CniNetworkConfig | null, req: CniRequest): Promise<void> {
    const file = this.cacheFile(network, req.containerId, req.ifName);
    const cached = await readJson<CachedResult>(file);
    const net = cached ? { ...netFromRaw(cached.config), file: '(cache)' } : current?.name === network ? current : null;
    if (!net) return;
    await this.delChain(net, { ...req, netnsPath: req.netnsPath || cached?.netnsPath || '' }, cached?.result ?? null);
    await fsp.rm(file, { force: true });
  }

  /**
   * DEL after a crash, from an operation's journal: with the cached config and result when
   * ADD got as far as caching them, else with `config`, the conflist ADD was given (so an
   * ADD killed half-way is undone with what it was running). Plugins of that ADD still
   * running (the dead daemon's children) are killed first, so none can allocate after it.
   */
  async delRecorded(config: Record<string, unknown>, req: CniRequest): Promise<void> {
    await killStrayPlugins(req.containerId);
    const fallback = { ...netFromRaw(config), file: '(journal)' };
    await this.del(fallback.name, fallback, req);
  }

  /** Every cached ADD (what the cache dir holds), for the orphan sweep. */
  async cachedEntries(): Promise<CachedResult[]> {
    let names: string[];
    try {
      names = (await fsp.readdir(this.opts.cacheDir)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
    } catch {
      return [];
    }
    const out: CachedResult[] = [];
    for (const n of names) {
      const c = await readJson<CachedResult>(path.join(this.opts.cacheDir, n)).catch(() => null);
      if (c) out.push(c);
    }
    return out;
  }

  /** Temp files of cache writes a crash interrupted (call only while no ADD runs). */
  async removeTempFiles(): Promise<string[]> {
    const names = (await fsp.readdir(this.opts.cacheDir).catch(() => [] as string[])).filter((n) => n.startsWith('.') && n.endsWith('.tmp'));
    for (const n of names) await fsp.rm(path.join(this.opts.cacheDir, n), { force: true });
    return names;
  }

  /** DEL of a cached ADD with what the cache says it was given (the orphan sweep's). */
  async delCached(c: CachedResult): Promise<void> {
    await killStrayPlugins(c.containerId);
    await this.del(c.network, null, { containerId: c.containerId, netnsPath: c.netnsPath, ifName: c.ifName, args: c.args, capabilities: c.capabilities });
  }

  /** The cached ADD result for a container, or null. */
  async cachedResult(network: string, containerId: string, ifName: string): Promise<CniResult | null> {
    const cached = await readJson<CachedResult>(this.cacheFile(network, containerId, ifName));
    return cached ? parseResult(cached.result) : null;
  }
}

/** The message of a CNI error object ({code, msg, details}) on a plugin's stdout, or null. */
function pluginErrorOf(stdout: string): string | null {
  try {
    const e = JSON.parse(stdout) as { msg?: string; details?: string };
    return e.msg ? `${e.msg}${e.details ? `: ${e.details}` : ''}` : null;
  } catch {
    return null;
  }
}

/**
 * Kills plugin processes of an earlier daemon still working for `containerId` (found by
 * the CNI_CONTAINERID their environment carries) and waits until they are gone.
 */
export async function killStrayPlugins(containerId: string): Promise<number[]> {
  const needle = Buffer.from(`\0CNI_CONTAINERID=${containerId}\0`);
  const killed: number[] = [];
  for (const name of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const env = await fsp.readFile(`/proc/${name}/environ`).catch(() => null);
    if (!env || !Buffer.concat([Buffer.from([0]), env]).includes(needle)) continue;
    try {
      process.kill(Number(name), 'SIGKILL');
      killed.push(Number(name));
    } catch {
      // gone already
    }
  }
  // SIGKILL is final once delivered; a process in an uninterruptible step finishes it
  // first, so wait until each is a zombie or gone before undoing what it did.
  for (const pid of killed) {
    for (let i = 0; i < 200; i++) {
      const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
      if (stat === null || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) break;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  return killed;
}

function netFromRaw(raw: Record<string, unknown>): Omit<CniNetworkConfig, 'file'> {
  const plugins = (Array.isArray(raw.plugins) ? raw.plugins : [raw]) as CniPluginConf[];
  return { name: String(raw.name), cniVersion: String(raw.cniVersion ?? ''), plugins, raw };
}

/** Reads the ips and interfaces of a result of any CNI version from 0.3 on. */
export function parseResult(raw: Record<string, unknown>): CniResult {
  const ips = Array.isArray(raw.ips) ? (raw.ips as Record<string, unknown>[]) : [];
  return {
    cniVersion: String(raw.cniVersion ?? ''),
    interfaces: Array.isArray(raw.interfaces) ? (raw.interfaces as CniResult['interfaces']) : [],
    ips: ips.map((ip) => ({
      address: String(ip.address ?? ''),
      gateway: typeof ip.gateway === 'string' ? ip.gateway : null,
      interface: typeof ip.interface === 'number' ? ip.interface : null,
    })),
    raw,
  };
}
