/**
 * The CNI network configuration the runtime uses: the first valid file of the conf dir in
 * lexical order (*.conflist, *.conf, *.json), as libcni and the peers choose it. The dir
 * is watched, so that a config written after start-up (by a CNI daemonset, typically)
 * makes the network ready without a restart.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../obs/logger';

export interface CniPluginConf {
  type: string;
  [key: string]: unknown;
}

export interface CniNetworkConfig {
  /** the file it was read from */
  file: string;
  name: string;
  cniVersion: string;
  plugins: CniPluginConf[];
  /** the raw JSON of the file */
  raw: Record<string, unknown>;
}

export interface NetworkStatus {
  ready: boolean;
  /** CRI condition reason when not ready, "" when ready */
  reason: string;
  message: string;
}

const extensions = ['.conflist', '.conf', '.json'];

/** Parses one config file into a conflist shape; throws with the file named. */
export function parseCniConfig(file: string, text: string): CniNetworkConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: invalid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${file}: not a JSON object`);
  const obj = raw as Record<string, unknown>;
  const name = obj.name;
  if (typeof name !== 'string' || name === '') throw new Error(`${file}: missing "name"`);
  const cniVersion = typeof obj.cniVersion === 'string' ? obj.cniVersion : '';
  let plugins: unknown;
  if (file.endsWith('.conflist')) {
    plugins = obj.plugins;
    if (!Array.isArray(plugins) || plugins.length === 0) throw new Error(`${file}: "plugins" must be a non-empty list`);
  } else {
    // A single-plugin .conf is a conflist of one.
    plugins = [obj];
  }
  for (const [i, p] of (plugins as unknown[]).entries()) {
    if (p === null || typeof p !== 'object' || typeof (p as Record<string, unknown>).type !== 'string') {
      throw new Error(`${file}: plugin ${i} has no "type"`);
    }
  }
  return { file, name, cniVersion, plugins: plugins as CniPluginConf[], raw: obj };
}

export class CniConfigWatcher {
  private current: CniNetworkConfig | null = null;
  private lastError = '';
  private watcher: fs.FSWatcher | null = null;
  private reloading: Promise<void> | null = null;
  private again = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly confDir: string,
    private readonly log: Logger,
  ) {}

  /** Loads the config once and starts watching the dir (which may not exist yet). */
  async start(): Promise<void> {
    await this.reload();
    this.watch();
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = null;
  }

  config(): CniNetworkConfig | null {
    return this.current;
  }

  status(): NetworkStatus {
    if (this.current) return { ready: true, reason: '', message: '' };
    return {
      ready: false,
      reason: 'NetworkPluginNotReady',
      message: `network plugin not ready: no CNI configuration file in ${this.confDir}${this.lastError ? ` (${this.lastError})` : ''}`,
    };
  }

  /** Resolves with the config once one is loaded, or null after `timeoutMs`. */
  async waitForConfig(timeoutMs: number, signal: AbortSignal | null): Promise<CniNetworkConfig | null> {
    if (this.current) return this.current;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
    return this.current;
  }

  private watch(): void {
    try {
      this.watcher = fs.watch(this.confDir, { persistent: false }, () => void this.reload());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = null;
        this.retryWatchLater();
      });
    } catch {
      // The dir does not exist yet: look again shortly (fs.watch cannot watch a missing dir).
      this.retryWatchLater();
    }
  }

  private retryWatchLater(): void {
    setTimeout(() => {
      if (this.watcher) return;
      void this.reload().then(() => this.watch());
    }, 1000).unref();
  }

  /** Re-reads the dir; concurrent triggers coalesce into one extra pass. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.again = false;
        await this.readDir();
      } while (this.again);
    })().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  private async readDir(): Promise<void> {
    let names: string[];
    try {
      names = (await fsp.readdir(this.confDir)).filter((n) => extensions.includes(path.extname(n))).sort();
    } catch {
      names = [];
    }
    let found: CniNetworkConfig | null = null;
    const errors: string[] = [];
    for (const n of names) {
      const file = path.join(this.confDir, n);
      try {
        found = parseCniConfig(file, await fsp.readFile(file, 'utf8'));
        break;
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    const before = this.current?.file ?? null;
    this.current = found;
    this.lastError = errors.join('; ');
    if ((found?.file ?? null) !== before) {
      if (found) this.log.info({ file: found.file, network: found.name }, 'CNI network configuration loaded');
      else this.log.warn({ dir: this.confDir, errors }, 'no usable CNI network configuration');
    }
    if (found) for (const w of [...this.waiters]) w();
  }
}
