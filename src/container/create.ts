/**
 * CreateContainer as CRI-O does it: validate, name and id, reserve the name, resolve the
 * image, mount the overlay rootfs, generate and save the OCI spec, make the cgroup, prepare
 * the log FIFOs, create the process held before exec, persist, emit; each step pushing its
 * undo on the request's cleanup stack (recorded in its journal before the resource exists).
 * makeProcess is also StartContainer's, for a container whose held process went with the
 * daemon that made it.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { CleanupStack } from '../domain/cleanup';
import { RuntimeError, failedPrecondition, invalidArgument, notFound } from '../domain/errors';
import { nowNanos } from '../domain/events';
import { pathLengthError, quotePath, throwAsResourceError } from '../domain/limits';
import { containerName, newId } from '../domain/ids';
import type { ProcessHandle } from '../native/process';
import type { SandboxRecord } from '../sandbox/model';
import { writeJsonAtomic } from '../state/atomic-file';
import type { ImageConfig } from '../oci/generate';
import type { OciSpec } from '../oci/types';
import type { ContainerContext, LogReader } from './context';
import type { CriLogWriter } from './cri-log';
import { containerStdin } from './attach';
import { attachReader, closeFd, containerLogWriter, openFd } from './logs';
import { containerRecordVersion, type ContainerRecord } from './model';
import { containerProcessSpec, type StdioPlan } from './process-plan';
import type { ContainerSpec } from './spec';
import { holdProcess } from './state-machine';
import { stepTimer, type StepTimer } from '../obs/steps';

function imageConfigOf(raw: { config?: Record<string, unknown> } | undefined): ImageConfig {
  const c = (raw?.config ?? {}) as Record<string, unknown>;
  const arr = (v: unknown): string[] | null => (Array.isArray(v) ? (v as string[]) : null);
  const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  return {
    user: str(c.User),
    env: arr(c.Env),
    entrypoint: arr(c.Entrypoint),
    cmd: arr(c.Cmd),
    workingDir: str(c.WorkingDir),
    stopSignal: str(c.StopSignal),
    volumes: c.Volumes && typeof c.Volumes === 'object' ? Object.keys(c.Volumes as object) : null,
    labels: (c.Labels as Record<string, string> | null) ?? null,
  };
}

export async function create(ctx: ContainerContext, sandboxIdOrPrefix: string, spec: ContainerSpec): Promise<string> {
  if (sandboxIdOrPrefix === '') throw invalidArgument('pod_sandbox_id is empty');
  const sandbox = ctx.opts.sandboxes.get(sandboxIdOrPrefix);
  if (!sandbox) throw notFound(`pod sandbox ${sandboxIdOrPrefix} not found`);
  if (sandbox.state !== 'SANDBOX_READY') throw failedPrecondition(`pod sandbox ${sandbox.id} is not ready`);
  const logPath = logPathOf(sandbox, spec.logPath);

  const name = containerName(spec, sandbox.spec);
  const pending = ctx.creating.join(name);
  if (pending) return pending;
  const holder = ctx.names.get(name);
  if (holder) {
    const r = ctx.records.get(holder);
    if (r && r.state === 'CONTAINER_CREATED') return r.id;
    throw new RuntimeError('already-exists', `container name ${name} is reserved for ${holder}`);
  }
  const id = newId();
  return ctx.creating.start(name, () => build(ctx, id, name, sandbox, spec, logPath));
}

/** The absolute log path: CRI's log_path is relative to the pod's log directory. */
function logPathOf(sandbox: SandboxRecord, logPath: string): string | null {
  if (logPath === '') return null;
  if (path.isAbsolute(logPath)) throw invalidArgument(`config.log_path ${JSON.stringify(logPath)} must be relative to the pod's log directory`);
  if (sandbox.spec.logDirectory === '') throw invalidArgument(`config.log_path ${JSON.stringify(logPath)} is relative but the pod has no log directory`);
  const full = path.resolve(sandbox.spec.logDirectory, logPath);
  if (!full.startsWith(`${sandbox.spec.logDirectory.replace(/\/$/, '')}/`)) {
    throw invalidArgument(`config.log_path ${quotePath(logPath)} leaves the pod's log directory`);
  }
  const tooLong = pathLengthError(full);
  if (tooLong !== null) throw invalidArgument(`config.log_path ${quotePath(logPath)}: the log file ${quotePath(full)} ${tooLong}`);
  return full;
}

async function build(ctx: ContainerContext, id: string, name: string, sandbox: SandboxRecord, want: ContainerSpec, logPath: string | null): Promise<string> {
  const log = ctx.opts.log.child({ containerId: id, container: `${sandbox.spec.namespace}/${sandbox.spec.name}/${want.name}` });
  const steps = stepTimer(ctx.opts.metrics, 'CreateContainer');
  // The journal comes first: a failure to open it leaves nothing to undo.
  const cleanup = new CleanupStack(log, await steps.time('journal', () => ctx.opts.ops.begin('CreateContainer', id)));
  let specSaved: Promise<void> | null = null;
  try {
    steps.timeSync('reserve_name', () => ctx.names.reserve(name, id));
    cleanup.push(`name ${name}`, () => ctx.names.release(name));
    const imageRef = want.image.image;
    const image = await steps.time('image_status', () => ctx.opts.images.status(imageRef));
    if (!image) throw notFound(`image ${imageRef} is not present: pull it first`);

    const stateDir = path.join(ctx.config.root, 'containers', id);
    const runDir = path.join(ctx.config.runroot, 'containers', id);
    await steps.time('dirs', async () => {
      await cleanup.record({ kind: 'tree', path: stateDir });
      await fsp.mkdir(stateDir, { recursive: true, mode: 0o700 });
      await cleanup.record({ kind: 'tree', path: runDir });
      await fsp.mkdir(runDir, { recursive: true, mode: 0o711 });
    });

    // The overlay rootfs from the image's layers.
    await cleanup.record({ kind: 'rootfs', containerId: id });
    const dirs = await steps.time('prepare_rootfs', () => ctx.opts.images.prepareRootfs(image.id, id));
    const rootfs = path.join(runDir, 'rootfs');
    await steps.time('mount_rootfs', async () => {
      await fsp.mkdir(rootfs, { mode: 0o755 });
      await cleanup.record({ kind: 'mount', path: rootfs }, () => ctx.opts.host.unmount(rootfs));
      await ctx.opts.host.mountOverlay(dirs.lowerDirs, dirs.upperDir, dirs.workDir, rootfs);
    });

    // The OCI spec, saved as config.json as CRI-O does.
    const target = want.namespaces.pid === 'TARGET' ? want.namespaces.targetId : '';
    const targetPid = target ? pidOfTarget(ctx, target) : null;
    const generated = await steps.time('generate_spec', () =>
      ctx.opts.host.generateSpec({
        containerId: id,
        spec: want,
        imageName: imageRef,
        imageConfig: imageConfigOf(image.config as { config?: Record<string, unknown> }),
        rootfs,
        sandbox,
        logPath,
        podPidNamespace: sandbox.infra ? `/proc/${sandbox.infra.pid}/ns/pid` : null,
        targetPid,
        defaults: ctx.opts.host.defaults,
        mountInfo: null,
      }),
    );
    const spec = generated.spec;
    // Saved while the cgroup and the process are made (it is under the state dir, whose
    // undo is already recorded); durable before the record, the commit point, is written.
    specSaved = steps.time('write_spec', () => writeJsonAtomic(path.join(stateDir, 'config.json'), spec));
    specSaved.catch(() => {}); // awaited below, or by the unwind

    // The container's cgroup under the pod's, with its device rules enforced before any
    // process joins it. The undo goes first: a create that fails half-way (a device
    // program the kernel refuses) leaves its directories, and remove takes missing ones.
    const cgroupPath = spec.linux.cgroupsPath;
    await steps.time('cgroup', async () => {
      await cleanup.record({ kind: 'cgroup', path: cgroupPath }, () => ctx.opts.host.cgroups.remove(cgroupPath));
      await ctx.opts.host.cgroups.create(cgroupPath, generated.resources).catch(throwAsResourceError);
    });

    const record: ContainerRecord = {
      version: containerRecordVersion,
      id,
      name,
      sandboxId: sandbox.id,
      spec: want,
      image: { id: image.id, ref: image.repoDigests[0] ?? image.id, name: imageRef },
      state: 'CONTAINER_CREATED',
      createdAt: nowNanos(),
      startedAt: '0',
      finishedAt: '0',
      exitCode: 0,
      reason: '',
      message: '',
      stateDir,
      runDir,
      rootfs,
      upperDir: dirs.upperDir,
      logPath: logPath ?? '',
      cgroupPath,
      resources: generated.resources,
      stopSignal: generated.stopSignal.name,
      pid: null,
      pidStartTime: null,
    };

    // The process, created and held before exec until StartContainer.
    ctx.hasDevicesCgroup.set(id, true); // made by cgroups.create above
    cleanup.push(`devices cgroup note of ${id}`, () => void ctx.hasDevicesCgroup.delete(id));
    await makeProcess(ctx, record, spec, cleanup, steps);
    // The record is the commit point (see SandboxService.create).
    cleanup.point();
    await specSaved;
    await steps.time('persist', () => ctx.persist(record));
    ctx.records.set(id, record);
    ctx.specs.set(id, spec);
    ctx.index.add(id);
    await steps.time('commit', () => cleanup.commit());
    ctx.opts.events.publish({ containerId: id, type: 'CONTAINER_CREATED_EVENT', createdAt: record.createdAt, sandboxId: sandbox.id });
    log.info({ image: imageRef }, `Created container ${id}: ${name}`);
    return id;
  } catch (e) {
    // No write into the state dir may outlast its removal.
    await specSaved?.catch(() => {});
    await cleanup.unwind();
    throw e;
  }
}

function pidOfTarget(ctx: ContainerContext, target: string): number {
  const t = ctx.get(target);
  if (!t || t.state !== 'CONTAINER_RUNNING' || t.pid === null) throw failedPrecondition(`target container ${target} is not running`);
  return t.pid;
}

/**
 * Makes the stdio (FIFOs for pipes, a pty for a terminal), the log writer and the
 * process held before exec. Registers the undos on `cleanup`; times its steps on `steps`
 * (CreateContainer's, or StartContainer's when it makes the process again).
 */
export async function makeProcess(ctx: ContainerContext, record: ContainerRecord, spec: OciSpec, cleanup: CleanupStack, steps: StepTimer): Promise<void> {
  const isTty = spec.process.terminal;
  const stdinWanted = record.spec.stdin;
  const fifo = (n: string) => path.join(record.runDir, n);
  const toClose: number[] = [];
  const containerEnds: number[] = [];
  let stdio: StdioPlan = { stdin: 'null', stdout: 'null', stderr: 'null' };
  const readers: Array<{ stream: 'stdout' | 'stderr'; fd: number }> = [];
  const closeContainerEnds = () => {
    for (const fd of containerEnds.splice(0)) closeFd(fd);
  };
  if (!isTty) {
    await steps.time('fifos', async () => {
      try {
        for (const s of ['stdout', 'stderr'] as const) {
          await ctx.opts.host.mkfifo(fifo(s)).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'EEXIST') throw e;
          });
          // Ours: read side, non-blocking for libuv. Theirs: read-write (see the file comment).
          const ours = await openFd(fifo(s), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
          toClose.push(ours);
          readers.push({ stream: s, fd: ours });
          ctx.keeper?.hold(record.id, s, ours);
          containerEnds.push(await openFd(fifo(s), fs.constants.O_RDWR));
        }
      } catch (e) {
        closeContainerEnds();
        for (const fd of toClose) closeFd(fd);
        ctx.keeper?.drop(record.id);
        throw e;
      }
    });
    stdio = { stdin: stdinWanted ? 'pipe' : 'null', stdout: { fd: containerEnds[0] }, stderr: { fd: containerEnds[1] } };
  }
  let handle: ProcessHandle;
  try {
    const cgroups = ctx.opts.host.cgroups;
    const view = { mode: cgroups.mode, paths: cgroups.paths(record.cgroupPath) };
    const procs = await ctx.cgroupProcs(record);
    handle = await steps.time('create_process', () => ctx.opts.host.createProcess(containerProcessSpec(spec, procs, stdio, view)));
  } catch (e) {
    closeContainerEnds();
    for (const fd of toClose) closeFd(fd);
    ctx.keeper?.drop(record.id);
    throw e;
  } finally {
    closeContainerEnds();
  }
  cleanup.push(`process ${handle.pid}`, async () => {
    ctx.opts.host.signalProcess(handle, 'SIGKILL');
    await ctx.opts.host.releaseProcess(handle);
  });
  for (const w of handle.warnings) ctx.opts.log.warn({ containerId: record.id }, `container process: ${w}`);

  // The log: FIFO readers (or the pty master) into the CRI log file.
  let logWriter: CriLogWriter | null = null;
  const logReaders: LogReader[] = [];
  if (record.logPath !== '') {
    const writer = containerLogWriter(ctx, record);
    logWriter = writer;
    await steps.time('open_log', async () => {
      await fsp.mkdir(path.dirname(record.logPath), { recursive: true });
      await writer.openFile();
    });
  }
  if (isTty && handle.terminal !== null) logReaders.push(attachReader(logWriter, 'stdout', handle.terminal, true));
  for (const r of readers) logReaders.push(attachReader(logWriter, r.stream, r.fd, false));
  let stdin: Writable | null = null;
  const closeStdio = () => {
    for (const r of logReaders) r.sock.destroy();
    stdin?.destroy();
  };
  // On the cleanup before the stdin is made: its dup can fail (EMFILE), and the readers
  // above must not leak then.
  cleanup.push(`stdio of ${record.id}`, async () => {
    closeStdio();
    ctx.keeper?.drop(record.id);
    await logWriter?.close();
  });
  stdin = containerStdin(ctx, record, handle);
  holdProcess(record, handle.pid, await steps.time('process_start_time', () => ctx.opts.host.processStartTime(handle.pid)));
  const stdinFd = handle.terminal === null ? handle.stdin : null;
  ctx.live.set(record.id, { handle, log: logWriter, readers: logReaders, stdin, stdinFd, closeStdio, done: null });
  cleanup.push(`live state of ${record.id}`, () => void ctx.live.delete(record.id));
}
