import { invalidArgument } from '../../domain/errors';
import type { Unary } from '../handlers';

/** kubelet's checks of a remote command's streams (validateExecRequest, validateAttachRequest). */
export function checkStreamOptions(req: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): void {
  // With a terminal there is one output stream: stdout and stderr cannot be told apart.
  if (req.tty && req.stderr) throw invalidArgument('tty and stderr cannot both be true');
  if (!req.stdin && !req.stdout && !req.stderr) throw invalidArgument('one of stdin, stdout, or stderr must be set');
}

/** Attach: validated as kubelet's streaming library does; answers a single-use URL on the streaming server. */
export const attach: Unary<'Attach'> = (req, { deps }) => {
  if (!req.container_id) throw invalidArgument('missing required container_id');
  checkStreamOptions(req);
  const r = deps.containers.runningContainer(req.container_id);
  const url = deps.streaming.attach({ containerId: r.id, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr });
  return Promise.resolve({ url });
};
