import { invalidArgument } from '../../domain/errors';
import type { Unary } from '../handlers';

/** PortForward: validated as kubelet's streaming library does; answers a single-use URL on the streaming server. */
export const portForward: Unary<'PortForward'> = (req, { deps }) => {
  if (!req.pod_sandbox_id) throw invalidArgument('missing required pod_sandbox_id');
  const bad = req.port.find((p) => !Number.isInteger(p) || p < 1 || p > 65535);
  if (bad !== undefined) throw invalidArgument(`port: ${bad} is not a port (1-65535)`);
  const r = deps.sandboxes.readySandbox(req.pod_sandbox_id);
  return Promise.resolve({ url: deps.streaming.portForward({ sandboxId: r.id, ports: req.port }) });
};
