/** The configuration module's public API; see schema.ts for the keys. */
export {
  type ApiConfig,
  type CgroupConfig,
  type CgroupDriver,
  type Config,
  type ImageConfig,
  type LogLevel,
  type MetricsConfig,
  type MirrorConfig,
  type NetworkConfig,
  type PartialConfig,
  type RegistryConfig,
  type RuntimeConfig,
  type RuntimeType,
  type StreamingConfig,
  type TracingConfig,
  CGROUP_DRIVERS,
  RUNTIME_TYPES,
  defaultConfig,
} from './schema';
export {
  type ConfigFlags,
  type DefaultPaths,
  type LoadOptions,
  type LoadedConfig,
  DEFAULT_PATHS,
  loadConfig,
  loadConfigSync,
  loadOptionsFromFlags,
  overridesFromFlags,
} from './load';
export { ConfigError, validateConfig } from './validate';
export { renderToml } from './render';
