/**
 * The pino root logger. One per process; every component takes a child with its own
 * bindings. The level can change at run time (SIGHUP re-reads the config).
 */
import { once, type EventEmitter } from 'node:events';
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof logLevels)[number];

/**
 * Creates the root logger writing JSON lines to `destination` (stderr by default, which
 * is what a systemd unit's journal takes).
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/**
 * Resolves once every line logged so far is written: for the moment before the daemon's
 * execve, which would drop a write still in flight. pino's flush(cb) does not wait for one
 * (sonic-boom calls back at once when lines go out as they come, minLength 0), so this
 * waits for the destination's 'drain' while it is writing (sonic-boom has no public flag
 * for that), then writes what is still buffered synchronously.
 */
export async function logWritten(log: Logger): Promise<void> {
  const dest = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as (EventEmitter & { _writing?: boolean; flushSync?: () => void }) | undefined;
  if (!dest) return;
  if (dest._writing === true) await once(dest, 'drain');
  try {
    dest.flushSync?.();
  } catch {
    // not open yet, or destroyed: nothing of ours to write
  }
}
