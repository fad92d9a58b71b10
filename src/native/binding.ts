/**
 * The only importer of the compiled addon. Every facility file in src/native/ takes its raw
 * functions from here and declares their types; nothing outside src/native/ sees the
 * untyped module.
 *
 * The addon is loaded on first use, not at import: any module (the domain, the CLI's
 * `--help` and `config`) can be imported on a machine where it is not built, and only a
 * call that needs the kernel fails, with the error that lists what was tried.
 */
import path from 'node:path';
import { toSyscallError } from './errors';

// Compiled to dist/src/native/binding.js: three levels under the package root.
const root = path.resolve(__dirname, '..', '..', '..');
const candidates = [path.join(root, 'build', 'Release', 'nodecri.node'), path.join(root, 'build', 'Debug', 'nodecri.node')];

interface Loaded {
  raw: Record<string, unknown>;
  file: string;
}

let loaded: Loaded | null = null;

/** Every export a facility file has asked for, so that a stale build is found at start-up. */
const wanted = new Set<string>();

/** The addon, loaded by the first caller; throws (every time) while it cannot be loaded. */
function addon(): Loaded {
  if (loaded) return loaded;
  const errors: string[] = [];
  for (const file of candidates) {
    try {
      loaded = { raw: require(file) as Record<string, unknown>, file };
      return loaded;
    } catch (e) {
      errors.push(`${file}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`cannot load the nodecri addon (run npm run build:native); tried:\n  ${errors.join('\n  ')}`);
}

/**
 * Directory of the build output the addon was loaded from (loading it if no call has yet);
 * the pause, init and keeper binaries live there too.
 */
export function buildDir(): string {
  return path.dirname(addon().file);
}

/**
 * Loads the addon and checks that it has every export the facility files declared (those
 * imported so far: the daemon imports them all), so that a stale build stops the start
 * instead of failing a request later; throws naming the missing ones.
 */
export function checkAddon(): void {
  const missing = [...wanted].filter((name) => typeof addon().raw[name] !== 'function');
  if (missing.length > 0) throw new Error(`the nodecri addon ${addon().file} has no export ${missing.join(', ')} (stale build? run npm run build:native)`);
}

/**
 * Returns the addon export `name`, wrapped so that errors it throws (synchronously or by
 * rejecting) become SyscallErrors. The export is looked up at the first call, which loads
 * the addon if nothing has yet.
 */
export function nativeFunction<F extends (...args: never[]) => unknown>(name: string): F {
  wanted.add(name);
  let fn: ((...a: unknown[]) => unknown) | null = null;
  const wrapped = (...args: unknown[]): unknown => {
    if (!fn) {
      const found = addon().raw[name];
      if (typeof found !== 'function') throw new Error(`the nodecri addon has no export ${name} (stale build?)`);
      fn = found as (...a: unknown[]) => unknown;
    }
    let result: unknown;
    try {
      result = fn(...args);
    } catch (e) {
      throw toSyscallError(e);
    }
    if (result instanceof Promise) return result.catch((e: unknown) => Promise.reject(toSyscallError(e)));
    return result;
  };
  return wrapped as unknown as F;
}
