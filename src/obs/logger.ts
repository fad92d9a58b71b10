/**
 * The pino root logger. One per process; every component takes a child with its own
 * bindings. The level can change at run time (SIGHUP re-reads the config).
 */
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
