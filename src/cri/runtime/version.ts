import type { Unary } from '../handlers';

export const version: Unary<'Version'> = async (_req, { deps }) => ({
  // The kubelet-facing API version of the Version RPC itself, as the peers answer it.
  version: '0.1.0',
  runtime_name: deps.runtime.name,
  runtime_version: deps.runtime.version,
  runtime_api_version: deps.runtime.apiVersion,
});
