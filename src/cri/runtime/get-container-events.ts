import type { ServerStream } from '../handlers';
import { containerStatusToCri } from '../convert/container';
import { sandboxStatusToCri } from '../convert/sandbox';

/**
 * Streams every container lifecycle event, each with its pod's status and its containers'
 * statuses as they are when the event is sent (kubelet's evented PLEG).
 */
export const getContainerEvents: ServerStream<'GetContainerEvents'> = async (_req, { deps, signal }, send) => {
  const sub = deps.events.subscribe();
  const onAbort = () => sub.close();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const batch = await sub.next();
      if (batch === null) return;
      for (const e of batch) {
        const sandbox = deps.sandboxes.get(e.sandboxId);
        const containers = sandbox ? deps.containers.ofSandbox(sandbox.id) : [];
        send({
          container_id: e.containerId,
          container_event_type: e.type,
          created_at: e.createdAt,
          pod_sandbox_status: sandbox ? sandboxStatusToCri(sandbox) : null,
          containers_statuses: containers.map((c) => containerStatusToCri(c, null)),
        });
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    sub.close();
  }
};
