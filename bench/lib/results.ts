/**
 * What a bench run produces, one shape for every scenario: metrics whose samples are kept
 * per runtime with the time each was taken. The report (Markdown table, SVG plots,
 * index.html) is drawn from this alone, so what the JSON holds is what the pages show.
 */

/** One measured value, with the wall-clock time it was taken (ISO 8601). */
export interface Sample {
  at: string;
  value: number;
}

export type Unit = 'ms' | 'KiB' | 'MiB' | 'pods/s' | 'count';

export interface Metric {
  /** stable key, e.g. "sequential.total" */
  id: string;
  /** what a person reads, e.g. "pod start to first log line, sequential" */
  label: string;
  unit: Unit;
  /** false where more is better (pods/s); the table's ratio column says nodecri / peer either way */
  lowerIsBetter: boolean;
  /**
   * How the report plots it: "cdf" a latency CDF per runtime; "phase" one segment of the
   * stacked per-phase bars of its `group` (drawn from medians, in the order of the metrics);
   * "memory" a bar of the memory-per-pod chart; absent: the table only.
   */
  plot?: 'cdf' | 'phase' | 'memory';
  /** for plot "phase": which stacked bar chart the metric belongs to, e.g. "sequential pod start" */
  group?: string;
  /** runtime name -> its samples, in the order taken */
  samples: Record<string, Sample[]>;
}

export interface RuntimeInfo {
  name: string;
  /** the runtime's own words from the CRI Version RPC, e.g. "containerd v1.6.20" */
  version: string;
  /** "started" by the bench, or "endpoint" given with --endpoint */
  origin: 'started' | 'endpoint';
  endpoint: string;
}

export interface MachineInfo {
  kernel: string;
  cpus: number;
  cpuModel: string;
  memoryMiB: number;
  cgroup: string;
  loadavg: number[];
  /** tool -> version line (node, runc, containerd, crio, CNI plugins) */
  versions: Record<string, string>;
}

export interface BenchResult {
  scenario: string;
  /** the command line's options after defaults, as the scenario used them */
  options: Record<string, unknown>;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  runtimes: RuntimeInfo[];
  /** runtimes asked for but not run, with why (e.g. crio: "no crio binary on PATH") */
  skipped: Array<{ name: string; why: string }>;
  metrics: Metric[];
  /** lines the scenario wants said under the table (floors, per-step medians, errors) */
  notes: string[];
  /** raw data of the scenario's own beyond the metrics (floor samples, nodecri's per-step times) */
  extra: Record<string, unknown>;
  /** what the run made on the host, all of it removed at its end (the leak check reads this) */
  host: { workDir: string; cgroupParents: string[] };
}
