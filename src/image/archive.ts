/**
 * Where `nodecri image import` reads an image from: a directory (an OCI layout or an
 * unpacked `docker save`) or an archive of one, tar or gzip'd tar.
 *
 * An archive is read as data and never extracted: one pass over its tar records every
 * entry's name, type and data position in memory; a file is then read by name straight from
 * the tar at its position (a gzip'd archive is first decompressed into one scratch file, a
 * name we choose). Names and symlinks are resolved in that in-memory tree, so no entry can
 * make anything be written, or read, outside the archive, whatever its names or links say:
 * a link that leaves the archive's root, absolutely or by climbing, fails the lookup going
 * through it, and entries nothing looks up are never touched. containerd reads archives the
 * same way (core/images/archive/importer.go: blobs by name from the tar stream, symlinks
 * mapped by name); the blobs then go through the same verified layer unpack as pulled ones.
 *
 * A directory is the operator's own files and is read in place (following its symlinks, as
 * any reader of a directory does); only regular files are read.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { invalidArgument, RuntimeError } from '../domain/errors';
import { errnoCode } from './fsutil';
import { ByteLimit, unpackLimit, type LayerLimits } from './limits';
import { readTar, TarFormatError } from './tar';

/** A regular file of an image source. */
export interface SourceFile {
  size: number;
  open(): Readable;
}

export interface ImageSource {
  /** names the source in errors: the directory, or "archive FILE" */
  readonly name: string;
  /** The regular file `name` (a slash-separated path inside the source), or null when absent. */
  file(name: string, what: string): Promise<SourceFile | null>;
}

/** Reads a small file whole (manifests, configs, index.json), refusing more than `max` bytes. */
export async function readSmall(file: SourceFile, max: number, what: string): Promise<Buffer> {
  if (file.size > max) throw invalidArgument(`${what} is ${file.size} bytes, more than the ${max} a manifest or config may have`);
  const parts: Buffer[] = [];
  for await (const c of file.open()) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Path components of an archive name: "./a//b/" → ["a", "b"]; null when one is "..". */
function components(name: string): string[] | null {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  return parts.includes('..') ? null : parts;
}

// ---- a directory ----

export function dirSource(dir: string): ImageSource {
  return {
    name: dir,
    async file(name: string, what: string): Promise<SourceFile | null> {
      const parts = components(name);
      if (parts === null || parts.length === 0) throw invalidArgument(`${what} ${JSON.stringify(name)} points outside ${dir}`);
      const p = path.join(dir, ...parts);
      const st = await fsp.stat(p).catch((e: unknown) => {
        if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return null;
        throw e;
      });
      if (st === null) return null;
      if (!st.isFile()) throw invalidArgument(`${what} ${p} is not a regular file`);
      return { size: st.size, open: () => fs.createReadStream(p) };
    },
  };
}

// ---- an archive ----

type Node = { kind: 'file'; offset: number; size: number } | { kind: 'symlink'; target: string } | { kind: 'dir' } | { kind: 'other'; type: string };

/** The most symlinks one lookup follows, as Linux's MAXSYMLINKS. */
const MAX_HOPS = 40;

export class ArchiveSource implements ImageSource {
  readonly name: string;

  private constructor(
    archive: string,
    /** the uncompressed tar the data is read from (the archive, or its decompressed copy) */
    private readonly tar: string,
    private readonly nodes: Map<string, Node>,
  ) {
    this.name = `archive ${archive}`;
  }

  /**
   * Indexes `archive` (tar or gzip'd tar). A gzip'd one is decompressed first into
   * `scratch()`, a directory the caller removes.
   */
  static async open(archive: string, opts: { scratch: () => Promise<string>; limits: LayerLimits; signal: AbortSignal }): Promise<ArchiveSource> {
    const name = `archive ${archive}`;
    let tar = archive;
    if (await isGzip(archive)) {
      // Decompressed under the same limit as a layer: a gzip bomb stops as it streams.
      const limit = new ByteLimit(unpackLimit(opts.limits, (await fsp.stat(archive)).size), name);
      tar = path.join(await opts.scratch(), 'archive.tar');
      try {
        await pipeline(fs.createReadStream(archive), zlib.createGunzip(), limit, fs.createWriteStream(tar, { flags: 'wx', mode: 0o600 }), { signal: opts.signal });
      } catch (e) {
        if (opts.signal.aborted || e instanceof RuntimeError) throw e;
        const code = errnoCode(e) ?? '';
        if (code.startsWith('Z_')) throw invalidArgument(`${name} has bad gzip data: ${(e as Error).message}`);
        throw e;
      }
    }
    const nodes = new Map<string, Node>();
    try {
      for await (const { header: h, offset } of readTar(fs.createReadStream(tar))) {
        opts.signal.throwIfAborted();
        const parts = components(h.name);
        // A name that climbs out cannot be looked up, and the root is no file: ignored.
        if (parts === null || parts.length === 0) continue;
        const key = parts.join('/');
        if (h.type === 'file') nodes.set(key, { kind: 'file', offset, size: h.size });
        else if (h.type === 'symlink') nodes.set(key, { kind: 'symlink', target: h.linkname });
        else if (h.type === 'directory') nodes.set(key, { kind: 'dir' });
        else if (h.type === 'link') {
          // A hard link is a second name for an earlier entry (a file, or a symlink itself).
          const target = components(h.linkname);
          const node = target === null ? undefined : nodes.get(target.join('/'));
          nodes.set(key, node ?? { kind: 'other', type: `a hard link to ${JSON.stringify(h.linkname)}, which is not an earlier entry` });
        } else nodes.set(key, { kind: 'other', type: `a ${h.type} entry` });
      }
    } catch (e) {
      if (e instanceof TarFormatError) throw invalidArgument(`${name} is not a valid tar: ${e.message}`);
      throw e;
    }
    return new ArchiveSource(archive, tar, nodes);
  }

  /**
   * The node a name leads to, following symlinks inside the archive; undefined when there is
   * none. A lookup that a link takes out of the archive's root fails, naming the link.
   */
  private resolve(name: string): { key: string; node: Node | undefined } {
    const bad = (why: string) => invalidArgument(`${this.name}: ${JSON.stringify(name)} ${why}`);
    const start = components(name);
    if (start === null) throw bad('points outside the archive');
    const todo = [...start];
    const done: string[] = [];
    let hops = 0;
    let last: { key: string; target: string } | null = null;
    const outside = (link: { key: string; target: string }) => bad(`goes through the symlink ${JSON.stringify(link.key)} to ${JSON.stringify(link.target)}, outside the archive`);
    while (todo.length > 0) {
      const c = todo.shift() as string;
      if (c === '..') {
        // Only a symlink's target gets here (names were checked).
        if (done.length === 0 && last !== null) throw outside(last);
        done.pop();
        continue;
      }
      const key = [...done, c].join('/');
      const node = this.nodes.get(key);
      if (node?.kind !== 'symlink') {
        if (todo.length > 0 && node !== undefined && node.kind !== 'dir') throw bad(`goes through ${JSON.stringify(key)}, which is not a directory`);
        done.push(c);
        continue;
      }
      if (++hops > MAX_HOPS) throw bad('goes through too many levels of symbolic links');
      const target = node.target.split('/').filter((p) => p !== '' && p !== '.');
      // Climbing: how far the target goes above the link's directory, against how deep that is.
      let depth = done.length;
      for (const t of target) {
        depth += t === '..' ? -1 : 1;
        if (depth < 0) break;
      }
      last = { key, target: node.target };
      if (node.target.startsWith('/') || depth < 0) throw outside(last);
      todo.unshift(...target);
    }
    const key = done.join('/');
    return { key, node: this.nodes.get(key) };
  }

  async file(name: string, what: string): Promise<SourceFile | null> {
    const { key, node } = this.resolve(name);
    if (node === undefined) return null;
    if (node.kind !== 'file')
      throw invalidArgument(`${what}: ${JSON.stringify(key)} in ${this.name} is ${node.kind === 'other' ? node.type : `a ${node.kind}`}, not a regular file`);
    const { offset, size } = node;
    const tar = this.tar;
    return { size, open: () => (size === 0 ? Readable.from([]) : fs.createReadStream(tar, { start: offset, end: offset + size - 1 })) };
  }
}

async function isGzip(file: string): Promise<boolean> {
  const head = Buffer.alloc(2);
  const fh = await fsp.open(file, 'r');
  try {
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await fh.close();
  }
}
