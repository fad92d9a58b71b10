/** Host identity from the addon; read once at start-up. */
import { nativeFunction } from './binding';

export interface Uname {
  sysname: string;
  release: string;
  machine: string;
  nodename: string;
}

/** The addon's own version string (matches package.json when the build is current). */
export const addonVersion = nativeFunction<() => string>('version');
/** uname(2). */
export const uname = nativeFunction<() => Uname>('uname');
/** prctl(PR_GET_DUMPABLE) of this process: core dumps and same-uid /proc access allowed. */
export const dumpable = nativeFunction<() => boolean>('dumpable');
