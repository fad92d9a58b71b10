import type { Unary } from '../handlers';

export const updateRuntimeConfig: Unary<'UpdateRuntimeConfig'> = async (req, { deps, log }) => {
  const cidr = req.runtime_config?.network_config?.pod_cidr ?? '';
  deps.network.setPodCidr(cidr);
  log.info({ podCidr: cidr }, 'pod CIDR updated');
  return {};
};
