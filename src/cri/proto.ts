/**
 * Loads proto/api.proto once: the grpc-js service definitions that the server registers,
 * and a protobufjs reflection root used to find the fields marked `debug_redact` (registry
 * credentials) so that logs never carry them.
 */
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import type { ServiceDefinition } from '@grpc/grpc-js';

/** Compiled to dist/src/cri/proto.js: the package root is three levels up. */
export const protoFile = path.resolve(__dirname, '..', '..', '..', 'proto', 'api.proto');

/**
 * keepCase: handlers see the proto's snake_case names, as in CRI-O and the CRI docs.
 * longs as strings: int64 nanosecond timestamps exceed 2^53. enums as their names.
 */
export const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

const packageDefinition = protoLoader.loadSync(protoFile, loaderOptions);

export type ServiceName = 'RuntimeService' | 'ImageService';

export function serviceDefinition(name: ServiceName): ServiceDefinition {
  return packageDefinition[`runtime.v1.${name}`] as ServiceDefinition;
}

const reflection = new protobuf.Root().loadSync(protoFile, { keepCase: true });
reflection.resolveAll();

export const REDACTED = '[redacted]';
const redactPlans = new Map<protobuf.Type, ((obj: Record<string, unknown>) => Record<string, unknown>) | null>();

/**
 * A function that copies a message object with every `debug_redact` field replaced, or
 * null when the type holds no such field at any depth (then the object is logged as is).
 */
function planFor(type: protobuf.Type, seen: Set<protobuf.Type>): ((obj: Record<string, unknown>) => Record<string, unknown>) | null {
  if (redactPlans.has(type)) return redactPlans.get(type) ?? null;
  if (seen.has(type)) return null;
  seen.add(type);
  const steps: Array<(src: Record<string, unknown>, dst: Record<string, unknown>) => void> = [];
  for (const field of type.fieldsArray) {
    const name = field.name;
    if (field.options?.debug_redact === true) {
      steps.push((src, dst) => {
        if (src[name] !== undefined && src[name] !== '') dst[name] = REDACTED;
      });
      continue;
    }
    const sub = field.resolvedType instanceof protobuf.Type ? planFor(field.resolvedType, seen) : null;
    if (!sub) continue;
    steps.push((src, dst) => {
      const v = src[name];
      if (v === null || v === undefined) return;
      if (Array.isArray(v)) dst[name] = v.map((x) => sub(x as Record<string, unknown>));
      else if (field.map) dst[name] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, sub(x as Record<string, unknown>)]));
      else dst[name] = sub(v as Record<string, unknown>);
    });
  }
  const plan =
    steps.length === 0
      ? null
      : (obj: Record<string, unknown>) => {
          const copy = { ...obj };
          for (const step of steps) step(obj, copy);
          return copy;
        };
  redactPlans.set(type, plan);
  return plan;
}

/** The message as it may be logged: secrets replaced by "[redacted]". */
export function redact(typeName: string, message: unknown): unknown {
  if (message === null || typeof message !== 'object') return message;
  const type = reflection.lookupType(`runtime.v1.${typeName}`);
  const plan = planFor(type, new Set());
  return plan ? plan(message as Record<string, unknown>) : message;
}
