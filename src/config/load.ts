/**
 * Loading: defaults, then the main file, then each drop-in `*.toml` in lexical order, then the
 * CLI overrides. Tables merge key by key and everything else (arrays included) replaces, so a
 * drop-in changes only the keys it sets. Runs once at start-up and on reload; all I/O is async
 * so a reload never stalls in-flight RPCs (loadConfigSync is for start-up only).
 */
import fsSync, { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { TomlError, parse } from 'smol-toml';
import { type LogLevel, logLevels } from '../obs/logger';
import type { Config, KeyPath, PartialConfig, RawTable } from './schema';
import { ROOT, decode, defaultConfig, encode, isTable } from './schema';
import { ConfigError, type Layer, type Provenance, checkLayer, crossCheck, sourceOf } from './validate';

export interface LoadOptions {
  /** the main file; null means DEFAULT_PATHS.file, which may be absent */
  file: string | null;
  /** the drop-in directory; null means DEFAULT_PATHS.dir, which may be absent */
  dir: string | null;
  overrides: PartialConfig;
}

export interface LoadedConfig {
  config: Config;
  /** the files applied, in order */
  sources: string[];
  /** which source set a key last ("defaults" when none did), for errors found after loading */
  sourceOf: (at: KeyPath) => string;
}

export interface DefaultPaths {
  file: string;
  dir: string;
}

export const DEFAULT_PATHS: DefaultPaths = { file: '/etc/nodecri/nodecri.toml', dir: '/etc/nodecri/nodecri.d' };

/**
 * `defaults` is injectable so tests can stand in for /etc; a path that was named explicitly
 * (file or dir not null) must exist, a default one may be absent.
 */
export async function loadConfig(opts: LoadOptions, defaults: DefaultPaths = DEFAULT_PATHS): Promise<LoadedConfig> {
  const layers: Layer[] = [];
  const sources: string[] = [];
  const add = (file: string, text: string): void => {
    const raw = parseToml(file, text);
    layers.push({ raw, label: () => file });
    sources.push(file);
  };

  const file = opts.file ?? defaults.file;
  const main = await read(file, opts.file === null);
  if (main !== null) add(file, main);

  const dir = opts.dir ?? defaults.dir;
  for (const name of await listDropIns(dir, opts.dir === null)) {
    const f = path.join(dir, name);
    const text = await read(f, false);
    if (text !== null) add(f, text);
  }

  layers.push({
    raw: encode(ROOT, opts.overrides) as RawTable,
    label: (field) => (field?.flag !== undefined ? `flag ${field.flag}` : 'overrides'),
  });
  return { ...build(layers), sources };
}

/**
 * loadConfig with synchronous reads, for the one value needed before libuv's pool starts
 * (its size): every async fs call would start the pool. Only at start-up, before serving.
 */
export function loadConfigSync(opts: LoadOptions, defaults: DefaultPaths = DEFAULT_PATHS): LoadedConfig {
  const layers: Layer[] = [];
  const sources: string[] = [];
  const add = (file: string, text: string): void => {
    layers.push({ raw: parseToml(file, text), label: () => file });
    sources.push(file);
  };
  const file = opts.file ?? defaults.file;
  const main = readSync(file, opts.file === null);
  if (main !== null) add(file, main);
  const dir = opts.dir ?? defaults.dir;
  for (const name of listDropInsSync(dir, opts.dir === null)) {
    const f = path.join(dir, name);
    const text = readSync(f, false);
    if (text !== null) add(f, text);
  }
  layers.push({
    raw: encode(ROOT, opts.overrides) as RawTable,
    label: (field) => (field?.flag !== undefined ? `flag ${field.flag}` : 'overrides'),
  });
  return { ...build(layers), sources };
}

/** Checks each layer, merges them over the defaults, then checks the result as a whole. */
function build(layers: Layer[]): { config: Config; sourceOf: (at: KeyPath) => string } {
  const provenance: Provenance = new Map();
  const merged = encode(ROOT, defaultConfig()) as RawTable;
  for (const layer of layers) {
    checkLayer(layer, provenance);
    merge(merged, layer.raw);
  }
  const source = (at: KeyPath): string => sourceOf(provenance, at);
  const config = decode(ROOT, merged, [], (at) => {
    throw ConfigError.atKey(source(at), at, 'required but not set');
  }) as Config;
  crossCheck(config, source);
  return { config, sourceOf: source };
}

/**
 * Both sides have passed checkLayer, so a key is a table on both sides or on neither, and every
 * key is a schema key or a DNS-label runtime name (never "__proto__"), so assignment is safe.
 */
function merge(into: RawTable, from: RawTable): void {
  for (const [key, v] of Object.entries(from)) {
    const cur = Object.hasOwn(into, key) ? into[key] : undefined;
    if (isTable(v) && isTable(cur)) merge(cur, v);
    else into[key] = v;
  }
}

function parseToml(file: string, text: string): RawTable {
  try {
    // bigint integers tell `1` from `1.0`, so "expected an integer, got float" can be reported;
    // unsafe keys (__proto__, constructor) are never valid here, so reject them outright
    return parse(text, { integersAsBigInt: true, unsafeKeyBehaviour: 'throw' });
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const reason = e.message.split('\n')[0].replace(/^Invalid TOML document: /, '');
    throw new ConfigError(`${file}:${e.line}:${e.column}: invalid toml: ${reason}`, file, null);
  }
}

function errnoCode(e: unknown): string | undefined {
  return e instanceof Error ? (e as NodeJS.ErrnoException).code : undefined;
}

function cannotRead(what: string, p: string, e: unknown): ConfigError {
  return new ConfigError(`${p}: cannot read config ${what}: ${e instanceof Error ? e.message : String(e)}`, p, null);
}

/** null when `optional` and the file does not exist; any other failure is an error. */
async function read(file: string, optional: boolean): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    if (optional && errnoCode(e) === 'ENOENT') return null;
    throw cannotRead('file', file, e);
  }
}

function readSync(file: string, optional: boolean): string | null {
  try {
    return fsSync.readFileSync(file, 'utf8');
  } catch (e) {
    if (optional && errnoCode(e) === 'ENOENT') return null;
    throw cannotRead('file', file, e);
  }
}

function listDropInsSync(dir: string, optional: boolean): string[] {
  try {
    return dropInNames(fsSync.readdirSync(dir, { withFileTypes: true }));
  } catch (e) {
    if (optional && errnoCode(e) === 'ENOENT') return [];
    throw cannotRead('directory', dir, e);
  }
}

function dropInNames(entries: fsSync.Dirent[]): string[] {
  return entries
    .filter((e) => e.name.endsWith('.toml') && (e.isFile() || e.isSymbolicLink()))
    .map((e) => e.name)
    .sort();
}

/** `*.toml` names in `dir`, sorted by code unit (not locale) so the order is the same everywhere. */
async function listDropIns(dir: string, optional: boolean): Promise<string[]> {
  try {
    return dropInNames(await fs.readdir(dir, { withFileTypes: true }));
  } catch (e) {
    if (optional && errnoCode(e) === 'ENOENT') return [];
    throw cannotRead('directory', dir, e);
  }
}

/** The CLI's options, as commander parses them. */
export interface ConfigFlags {
  config?: string;
  configDir?: string;
  root?: string;
  runroot?: string;
  listen?: string;
  logLevel?: string;
  cniConfigDir?: string;
  /** repeatable; replaces the list */
  cniPluginDir?: string[];
  /** "" disables metrics; anything else enables them at that address */
  metricsAddress?: string;
  streamingAddress?: string;
}

export function overridesFromFlags(flags: ConfigFlags): PartialConfig {
  const o: PartialConfig = {};
  if (flags.root !== undefined) o.root = flags.root;
  if (flags.runroot !== undefined) o.runroot = flags.runroot;
  if (flags.listen !== undefined) o.listen = flags.listen;
  if (flags.logLevel !== undefined) o.logLevel = logLevel(flags.logLevel);
  if (flags.cniConfigDir !== undefined || flags.cniPluginDir !== undefined) {
    o.network = {};
    if (flags.cniConfigDir !== undefined) o.network.cniConfigDir = flags.cniConfigDir;
    if (flags.cniPluginDir !== undefined) o.network.cniPluginDirs = [...flags.cniPluginDir];
  }
  if (flags.metricsAddress !== undefined) {
    o.metrics = flags.metricsAddress === '' ? { enabled: false } : { enabled: true, address: flags.metricsAddress };
  }
  if (flags.streamingAddress !== undefined) o.streaming = { address: flags.streamingAddress };
  return o;
}

/** The options for loadConfig from the CLI's flags. */
export function loadOptionsFromFlags(flags: ConfigFlags): LoadOptions {
  return { file: flags.config ?? null, dir: flags.configDir ?? null, overrides: overridesFromFlags(flags) };
}

function logLevel(v: string): LogLevel {
  const level = logLevels.find((l) => l === v);
  if (level === undefined) {
    throw ConfigError.atKey('flag --log-level', ['log_level'], `expected one of ${logLevels.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return level;
}
