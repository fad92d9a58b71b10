/**
 * HTTP answers written straight onto a socket that asked for an upgrade (Node hands such a
 * request over as a raw socket, with no ServerResponse), in the form Go's http.Error gives
 * kubelet's: text/plain, the message and a newline.
 */
import type { Duplex } from 'node:stream';

const reasons: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function replyError(socket: Duplex, code: number, message: string, headers: [string, string][] = []): void {
  const body = `${message}\n`;
  const head = [
    `HTTP/1.1 ${code} ${reasons[code] ?? 'Error'}`,
    'Content-Type: text/plain; charset=utf-8',
    'X-Content-Type-Options: nosniff',
    ...headers.map(([k, v]) => `${k}: ${v}`),
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  if (socket.writable) socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  else socket.destroy();
}
