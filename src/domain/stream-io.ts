/**
 * The client side of an exec or attach as the streaming server hands it to the domain: plain
 * Node streams, whatever the wire (SPDY or WebSocket) underneath.
 */
import type { Readable, Writable } from 'node:stream';

export interface TerminalSize {
  width: number;
  height: number;
}

export interface StreamIO {
  /** what the client sends; null when it asked for no stdin. Ends when the client closes its stdin. */
  stdin: Readable | null;
  /** where the process's stdout (or the terminal's output) goes; null when not asked for */
  stdout: Writable | null;
  /** where its stderr goes; null when not asked for, and always null with a terminal */
  stderr: Writable | null;
  tty: boolean;
  /**
   * Registers the listener for each terminal size the client sends (tty only). The domain
   * registers it once its terminal exists; sizes sent before that are replayed (the latest).
   */
  onResize(listener: (size: TerminalSize) => void): void;
}
