/**
 * Which seccomp filter a container gets, from the CRI security context (read into a
 * SeccompChoice by src/cri/convert/container.ts):
 * - `seccomp` (SecurityProfile) when present: RuntimeDefault → our default profile
 *   (seccomp-default.ts), Unconfined → none, Localhost → the JSON profile at localhost_ref
 *   (an absolute path on the host, as kubelet sends it).
 * - else the deprecated `seccomp_profile_path`: "runtime/default" and "docker/default" →
 *   the default profile, "unconfined" → none, "localhost/<absolute path>" → that file.
 * - else (nothing set) none: kubelet's own default is Unconfined unless the pod or the
 *   kubelet's SeccompDefault asks for RuntimeDefault, and kubelet then says so explicitly.
 * A privileged container never gets a filter (as both peers).
 *
 * A Localhost profile may be written in the OCI shape (config.json's linux.seccomp) or in
 * docker's (archMap, includes/excludes by capability and architecture, `name` for one
 * syscall); it is reduced to the OCI shape for this container. `minKernel` conditions are
 * taken as met: nodecri needs a kernel far newer than any the profiles single out.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { RuntimeError, invalidArgument } from '../domain/errors';
import { defaultSeccompProfile, seccompArchitectures } from './seccomp-default';
import type { OciSeccomp, OciSeccompArg, OciSyscall, SeccompAction, SeccompOperator } from './types';

/** For a Localhost profile, `field` is the CRI field that named it, for the errors. */
export type SeccompChoice = { kind: 'unconfined' } | { kind: 'runtime-default' } | { kind: 'localhost'; path: string; field: string };

export interface SeccompContext {
  /** Node's process.arch */
  arch: string;
  /** the container's bounding set, CAP_ names */
  capabilities: readonly string[];
}

/** Profiles are a few KiB; the bound keeps a huge file from filling the daemon's memory. */
const MAX_PROFILE_BYTES = 1024 * 1024;

/**
 * The text of a Localhost profile. The file is the client's choice, so it may be anything
 * on the host: it is opened non-blocking (a FIFO would hold a pool thread forever), must be
 * a regular file of bounded size, and no error says anything about what it holds.
 */
async function readProfile(file: string, field: string): Promise<string> {
  const bad = (what: string) => invalidArgument(`${field}: seccomp profile ${file} ${what}`);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw bad('does not exist');
    throw bad(`cannot be opened (${code ?? 'error'})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw bad('is not a regular file');
    if (st.size > MAX_PROFILE_BYTES) throw bad('is larger than 1 MiB');
    const buf = Buffer.alloc(MAX_PROFILE_BYTES + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > MAX_PROFILE_BYTES) throw bad('is larger than 1 MiB');
    return buf.toString('utf8', 0, n);
  } finally {
    await fh.close();
  }
}

/** The filter for the container, or null for none. */
export async function resolveSeccomp(choice: SeccompChoice, privileged: boolean, ctx: SeccompContext): Promise<OciSeccomp | null> {
  if (privileged || choice.kind === 'unconfined') return null;
  if (choice.kind === 'runtime-default') return defaultSeccompProfile(ctx);
  const text = await readProfile(choice.path, choice.field);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the input around the error: never pass it on.
    throw invalidArgument(`${choice.field}: seccomp profile ${choice.path} is not valid JSON`);
  }
  try {
    return profileFromJson(raw, choice.path, ctx);
  } catch (e) {
    if (e instanceof RuntimeError) throw invalidArgument(`${choice.field}: ${e.message}`);
    throw e;
  }
}

const ACTIONS: readonly SeccompAction[] = [
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
];
const OPERATORS: readonly SeccompOperator[] = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'];
const FLAGS = ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'];

/** The names docker profiles use in includes/excludes.arches for each Node arch. */
const GO_ARCHES: Readonly<Record<string, readonly string[]>> = {
  x64: ['amd64', 'x86_64', 'x32', '386', 'x86'],
  arm64: ['arm64', 'aarch64', 'arm'],
};

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** An OCI- or docker-shaped profile reduced to the OCI shape for this container. */
export function profileFromJson(raw: unknown, file: string, ctx: SeccompContext): OciSeccomp {
  const bad = (what: string) => invalidArgument(`seccomp profile ${file}: ${what}`);
  if (!isObj(raw)) throw bad('expected a JSON object');
  const action = (v: unknown, where: string): SeccompAction => {
    if (typeof v !== 'string' || !(ACTIONS as readonly string[]).includes(v)) {
      throw bad(`${where}: unsupported action ${JSON.stringify(v)}`);
    }
    return v as SeccompAction;
  };
  const errno = (v: unknown, where: string): number | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(`${where}: errnoRet must be a non-negative integer`);
    return v;
  };
  if (raw.listenerPath !== undefined && raw.listenerPath !== '') throw bad('seccomp notify listeners (listenerPath) are not supported');

  const out: OciSeccomp = { defaultAction: action(raw.defaultAction, 'defaultAction'), architectures: [], syscalls: [] };
  const defErrno = errno(raw.defaultErrnoRet, 'defaultErrnoRet');
  if (defErrno !== undefined) out.defaultErrnoRet = defErrno;

  const native = seccompArchitectures(ctx.arch);
  if (Array.isArray(raw.archMap) && raw.archMap.length > 0) {
    for (const m of raw.archMap) {
      if (!isObj(m) || typeof m.architecture !== 'string') throw bad('archMap: expected {architecture, subArchitectures}');
      if (m.architecture !== native[0]) continue;
      out.architectures.push(m.architecture, ...(strings(m.subArchitectures) ? m.subArchitectures : []));
    }
  } else if (raw.architectures !== undefined && raw.architectures !== null) {
    if (!strings(raw.architectures)) throw bad('architectures: expected a list of names');
    out.architectures.push(...raw.architectures);
  }
  if (raw.flags !== undefined && raw.flags !== null) {
    if (!strings(raw.flags)) throw bad('flags: expected a list of names');
    for (const f of raw.flags) if (!FLAGS.includes(f)) throw bad(`flags: unknown flag ${JSON.stringify(f)}`);
    if (raw.flags.length > 0) out.flags = [...raw.flags];
  }

  const archNames = GO_ARCHES[ctx.arch] ?? [ctx.arch];
  const hasAllCaps = (caps: unknown) => !strings(caps) || caps.every((c) => ctx.capabilities.includes(c));
  const hasAnyCap = (caps: unknown) => strings(caps) && caps.some((c) => ctx.capabilities.includes(c));
  const onArch = (arches: unknown) => !strings(arches) || arches.length === 0 || arches.some((a) => archNames.includes(a));

  const list = raw.syscalls ?? [];
  if (!Array.isArray(list)) throw bad('syscalls: expected a list');
  list.forEach((s: unknown, i: number) => {
    const where = `syscalls[${i}]`;
    if (!isObj(s)) throw bad(`${where}: expected an object`);
    const names = strings(s.names) ? s.names : typeof s.name === 'string' ? [s.name] : null;
    if (!names || names.length === 0) throw bad(`${where}: no syscall names`);
    if (isObj(s.includes)) {
      if (!hasAllCaps(s.includes.caps) || !onArch(s.includes.arches)) return;
    }
    if (isObj(s.excludes)) {
      if (hasAnyCap(s.excludes.caps)) return;
      if (strings(s.excludes.arches) && s.excludes.arches.some((a) => archNames.includes(a))) return;
    }
    const rule: OciSyscall = { names: [...names], action: action(s.action, where) };
    const e = errno(s.errnoRet, where);
    if (e !== undefined) rule.errnoRet = e;
    if (s.args !== undefined && s.args !== null) {
      if (!Array.isArray(s.args)) throw bad(`${where}.args: expected a list`);
      const args: OciSeccompArg[] = s.args.map((a: unknown, j: number) => {
        const w = `${where}.args[${j}]`;
        if (!isObj(a)) throw bad(`${w}: expected an object`);
        if (typeof a.index !== 'number' || !Number.isInteger(a.index) || a.index < 0 || a.index > 5) throw bad(`${w}: index must be 0..5`);
        if (typeof a.value !== 'number' || a.value < 0) throw bad(`${w}: value must be a non-negative number`);
        if (typeof a.op !== 'string' || !(OPERATORS as readonly string[]).includes(a.op)) throw bad(`${w}: unknown op ${JSON.stringify(a.op)}`);
        const arg: OciSeccompArg = { index: a.index, value: a.value, op: a.op as SeccompOperator };
        if (a.valueTwo !== undefined && a.valueTwo !== null) {
          if (typeof a.valueTwo !== 'number' || a.valueTwo < 0) throw bad(`${w}: valueTwo must be a non-negative number`);
          arg.valueTwo = a.valueTwo;
        }
        return arg;
      });
      if (args.length > 0) rule.args = args;
    }
    out.syscalls.push(rule);
  });
  return out;
}
