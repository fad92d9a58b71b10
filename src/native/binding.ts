/**
 * The only importer of the compiled addon. Every facility file in src/native/ takes its raw
 * functions from here and declares their types; nothing outside src/native/ sees the
 * untyped module.
 */
import path from 'node:path';
import { toSyscallError } from './errors';

// Compiled to dist/src/native/binding.js: three levels under the package root.
const root = path.resolve(__dirname, '..', '..', '..');
const candidates = [
  path.join(root, 'build', 'Release', 'nodecri.node'),
  path.join(root, 'build', 'Debug', 'nodecri.node'),
];

function load(): { raw: Record<string, unknown>; file: string } {
  const errors: string[] = [];
  for (const file of candidates) {
    try {
      return { raw: require(file) as Record<string, unknown>, file };
    } catch (e) {
      errors.push(`${file}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`cannot load the nodecri addon (run npm run build:native); tried:\n  ${errors.join('\n  ')}`);
}

const { raw, file: loadedFrom } = load();

/** Directory of the build output the addon was loaded from; the pause binary lives there too. */
export const buildDir = path.dirname(loadedFrom);

/**
 * Returns the addon export `name`, wrapped so that errors it throws (synchronously or by
 * rejecting) become SyscallErrors.
 */
export function nativeFunction<F extends (...args: never[]) => unknown>(name: string): F {
  const fn = raw[name];
  if (typeof fn !== 'function') throw new Error(`the nodecri addon has no export ${name} (stale build?)`);
  const wrapped = (...args: unknown[]): unknown => {
    let result: unknown;
    try {
      result = (fn as (...a: unknown[]) => unknown)(...args);
    } catch (e) {
      throw toSyscallError(e);
    }
    if (result instanceof Promise) return result.catch((e: unknown) => Promise.reject(toSyscallError(e)));
    return result;
  };
  return wrapped as unknown as F;
}
