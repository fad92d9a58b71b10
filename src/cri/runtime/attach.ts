import { invalidArgument } from '../../domain/errors';
import type { Unary } from '../handlers';
import { checkStreamOptions } from '../convert/stream-options';

/** Attach: validated as kubelet's streaming library does; answers a single-use URL on the streaming server. */
export const attach: Unary<'Attach'> = (req, { deps }) => {
  if (!req.container_id) throw invalidArgument('missing required container_id');
  checkStreamOptions(req);
  const r = deps.containers.runningContainer(req.container_id);
  const url = deps.streaming.attach({ containerId: r.id, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr });
  return Promise.resolve({ url });
};
