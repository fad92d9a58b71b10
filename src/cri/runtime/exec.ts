import { invalidArgument } from '../../domain/errors';
import type { Unary } from '../handlers';
import { checkStreamOptions } from '../convert/stream-options';

/** Exec: validated as kubelet's streaming library does; answers a single-use URL on the streaming server. */
export const exec: Unary<'Exec'> = (req, { deps }) => {
  if (!req.container_id) throw invalidArgument('missing required container_id');
  if (req.cmd.length === 0) throw invalidArgument('cmd: a command is required');
  checkStreamOptions(req);
  const r = deps.containers.runningContainer(req.container_id);
  const url = deps.streaming.exec({ containerId: r.id, cmd: req.cmd, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr });
  return Promise.resolve({ url });
};
