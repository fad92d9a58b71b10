/**
 * Stop signals: the image's StopSignal ("SIGTERM", "TERM", "15", "SIGRTMIN+3") or the CRI
 * ContainerConfig stop_signal enum (read by src/cri/convert/container.ts), parsed to a
 * canonical name and its Linux number, for StopContainer. Numbers are Linux's generic ones, the same on x86_64 and aarch64.
 */
import { invalidArgument } from '../domain/errors';

export interface StopSignal {
  /** canonical name: SIGTERM, SIGRTMIN+3, SIGRTMAX-1 */
  name: string;
  number: number;
}

const NAMES: ReadonlyArray<readonly [string, number]> = [
  ['SIGHUP', 1],
  ['SIGINT', 2],
  ['SIGQUIT', 3],
  ['SIGILL', 4],
  ['SIGTRAP', 5],
  ['SIGABRT', 6],
  ['SIGBUS', 7],
  ['SIGFPE', 8],
  ['SIGKILL', 9],
  ['SIGUSR1', 10],
  ['SIGSEGV', 11],
  ['SIGUSR2', 12],
  ['SIGPIPE', 13],
  ['SIGALRM', 14],
  ['SIGTERM', 15],
  ['SIGSTKFLT', 16],
  ['SIGCHLD', 17],
  ['SIGCONT', 18],
  ['SIGSTOP', 19],
  ['SIGTSTP', 20],
  ['SIGTTIN', 21],
  ['SIGTTOU', 22],
  ['SIGURG', 23],
  ['SIGXCPU', 24],
  ['SIGXFSZ', 25],
  ['SIGVTALRM', 26],
  ['SIGPROF', 27],
  ['SIGWINCH', 28],
  ['SIGIO', 29],
  ['SIGPWR', 30],
  ['SIGSYS', 31],
];
const ALIASES: Readonly<Record<string, number>> = { SIGIOT: 6, SIGCLD: 17, SIGPOLL: 29, SIGUNUSED: 31 };

/** As glibc reports them: the kernel's 32 and 33 are taken by the threading library. */
export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

export const SIGTERM: StopSignal = { name: 'SIGTERM', number: 15 };

function fromNumber(n: number): StopSignal | null {
  const named = NAMES.find(([, v]) => v === n);
  if (named) return { name: named[0], number: n };
  if (n === SIGRTMIN) return { name: 'SIGRTMIN', number: n };
  if (n === SIGRTMAX) return { name: 'SIGRTMAX', number: n };
  // Both spellings are valid for the middle of the range; glibc's strsignal counts up from RTMIN.
  if (n > SIGRTMIN && n < SIGRTMAX) return { name: `SIGRTMIN+${n - SIGRTMIN}`, number: n };
  return null;
}

/** Parses a signal as images and users write it; null when it is not one. */
export function parseSignal(text: string): StopSignal | null {
  const t = text.trim().toUpperCase();
  if (/^\d+$/.test(t)) return fromNumber(Number(t));
  const name = t.startsWith('SIG') ? t : `SIG${t}`;
  const named = NAMES.find(([k]) => k === name);
  if (named) return { name, number: named[1] };
  if (name in ALIASES) return fromNumber(ALIASES[name]!);
  const rt = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (rt) {
    const base = rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX;
    const off = rt[3] === undefined ? 0 : Number(rt[3]) * (rt[2] === '+' ? 1 : -1);
    const n = base + off;
    return n >= SIGRTMIN && n <= SIGRTMAX ? fromNumber(n) : null;
  }
  return null;
}

/**
 * The signal StopContainer sends first: the one the container spec asks for (the CRI
 * stop_signal, the ContainerStopSignals feature), else the image's StopSignal, else
 * SIGTERM. An image StopSignal that is not a signal is an invalid argument at create time
 * rather than a surprise at stop time.
 */
export function stopSignal(requested: StopSignal | null, imageStopSignal: string | null): StopSignal {
  if (requested !== null) return requested;
  if (imageStopSignal === null || imageStopSignal.trim() === '') return SIGTERM;
  const s = parseSignal(imageStopSignal);
  if (!s) throw invalidArgument(`image stop signal ${JSON.stringify(imageStopSignal)} is not a known signal`);
  return s;
}
