/**
 * What a SIGHUP applies. Services read the config per call, so swapping the whole object
 * would let a changed root, runroot, socket or default runtime take effect in the middle of
 * what the daemon runs. Instead only the keys the schema marks `live` (the log level, the
 * pause image, the pull settings and registries: what CRI-O's reload covers) take their new
 * value; every other key keeps its running value, and each one that changed is named, with
 * the file that changed it, as needing a restart (`nodecri restart` re-reads everything).
 */
import { isDeepStrictEqual } from 'node:util';
import { type AnyField, type Config, type KeyPath, type TableSpec, ROOT, formatPath } from './schema';

export interface ReloadPlan {
  /** the configuration to run with: the running one, with the live keys from the new one */
  config: Config;
  /** live keys whose value changed, applied */
  applied: string[];
  /** keys whose value changed that take effect only at a restart, with where the new value came from */
  needRestart: { key: string; source: string }[];
}

/**
 * Splits a freshly loaded configuration against the running one. Pure: neither input is
 * changed; the plan's config shares no table with `running` that it changes.
 */
export function planReload(running: Config, next: Config, sourceOf: (at: KeyPath) => string): ReloadPlan {
  const applied: string[] = [];
  const needRestart: ReloadPlan['needRestart'] = [];
  const config = structuredClone(running);
  const walk = (spec: TableSpec, cur: Record<string, unknown>, nxt: Record<string, unknown>, into: Record<string, unknown>, at: string[]): void => {
    for (const [prop, field] of Object.entries(spec.fields) as [string, AnyField][]) {
      const here = [...at, field.key];
      if (field.type.kind === 'table') {
        walk(field.type, cur[prop] as Record<string, unknown>, nxt[prop] as Record<string, unknown>, into[prop] as Record<string, unknown>, here);
        continue;
      }
      if (isDeepStrictEqual(cur[prop], nxt[prop])) continue;
      if (field.live) {
        into[prop] = structuredClone(nxt[prop]);
        applied.push(formatPath(here));
      } else {
        needRestart.push({ key: formatPath(here), source: sourceOf(here) });
      }
    }
  };
  walk(ROOT, running as unknown as Record<string, unknown>, next as unknown as Record<string, unknown>, config as unknown as Record<string, unknown>, []);
  return { config, applied, needRestart };
}
