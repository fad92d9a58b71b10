/**
 * OCI runtime-spec generation for CreateContainer: `generateSpec` and what it takes and
 * gives. The parts (capabilities, user resolution, seccomp, mounts, devices, signals) are
 * exported from their own files for the places that need one alone (StopContainer's
 * signal, UpdateContainerResources' conversion).
 */
export {
  ANNOTATIONS,
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH_ENV,
  DEFAULT_READONLY_PATHS,
  defaultRuntimeDefaults,
  generateSpec,
  ociResources,
  type GenerateInput,
  type GeneratedContainer,
  type ImageConfig,
  type RuntimeDefaults,
} from './generate';
export { ALL_CAPABILITIES, DEFAULT_CAPABILITIES } from './capabilities';
export { defaultSeccompProfile } from './seccomp-default';
export { parseSignal, stopSignal, type StopSignal } from './signals';
export type { ResolvedUser } from './user';
export * from './types';
