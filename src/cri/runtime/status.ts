import type { Unary } from '../handlers';

export const status: Unary<'Status'> = async (req, { deps }) => {
  const network = deps.network.status();
  const info: Record<string, string> = req.verbose ? { config: JSON.stringify(deps.runtime.effectiveConfig()) } : {};
  return {
    status: {
      conditions: [
        { type: 'RuntimeReady', status: true, reason: '', message: '' },
        { type: 'NetworkReady', status: network.ready, reason: network.reason, message: network.message },
      ],
    },
    info,
  };
};
