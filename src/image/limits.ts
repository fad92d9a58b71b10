/**
 * How far a layer (or an import archive) may decompress: a gzip bomb (1 GiB of zeros is
 * ~1 MiB of gzip; deflate reaches ~1000x) is refused while it streams, before it fills the
 * disk, instead of being decompressed first and checked after. The limit is a ratio to the
 * compressed size with a floor, max(max_layer_ratio x compressed, max_layer_ratio_floor),
 * and an optional absolute cap (max_layer_size). A pure ratio would refuse a legitimate
 * layer of zeros; a pure cap would refuse model images whose incompressible layers are
 * hundreds of GiB (those are cheap for the ratio: every unpacked byte came over the wire).
 * containerd and CRI-O have no such limit.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { ImageConfig as ImageSection } from '../config';
import { failedPrecondition, type RuntimeError } from '../domain/errors';

export interface LayerLimits {
  /** 0 means no ratio limit */
  ratio: number;
  floor: number;
  /** 0 means no cap */
  cap: number;
}

export function layerLimits(cfg: ImageSection): LayerLimits {
  return { ratio: cfg.maxLayerRatio, floor: cfg.maxLayerRatioFloor, cap: cfg.maxLayerSize };
}

export interface UnpackLimit {
  bytes: number;
  /** how the limit was reached, in config keys */
  why: string;
}

/** The most bytes something of `compressed` bytes may unpack to, or null for no limit. */
export function unpackLimit(l: LayerLimits, compressed: number): UnpackLimit | null {
  let limit: UnpackLimit | null = null;
  if (l.ratio > 0) {
    limit = { bytes: Math.max(l.ratio * compressed, l.floor), why: `max(max_layer_ratio = ${l.ratio} × its ${compressed} compressed bytes, max_layer_ratio_floor = ${l.floor})` };
  }
  if (l.cap > 0 && (limit === null || l.cap < limit.bytes)) limit = { bytes: l.cap, why: `max_layer_size = ${l.cap}` };
  return limit;
}

const UNITS: Array<[number, string]> = [
  [2 ** 40, 'TiB'],
  [2 ** 30, 'GiB'],
  [2 ** 20, 'MiB'],
  [2 ** 10, 'KiB'],
];

/** 536870912 → "512 MiB", 104510400 → "99.7 MiB". */
export function humanBytes(n: number): string {
  for (const [size, unit] of UNITS) {
    if (n >= size) {
      const v = n / size;
      return `${Number.isInteger(v) ? v : v.toFixed(1)} ${unit}`;
    }
  }
  return `${n} bytes`;
}

export function limitError(what: string, limit: UnpackLimit): RuntimeError {
  return failedPrecondition(
    `${what} unpacks to more than ${limit.bytes} bytes (${humanBytes(limit.bytes)}), the limit ${limit.why} in [image]: refusing it as a possible decompression bomb`,
  );
}

/** Passes bytes through and fails, naming `what` and the limit, as soon as they exceed it. */
export class ByteLimit extends Transform {
  bytes = 0;
  constructor(
    private readonly limit: UnpackLimit | null,
    private readonly what: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.limit !== null && this.bytes > this.limit.bytes) {
      cb(limitError(this.what, this.limit));
      return;
    }
    cb(null, chunk);
  }
}
