import type { Unary } from '../handlers';

export const execSync: Unary<'ExecSync'> = async (req, { deps, signal }) => {
  const r = await deps.containers.execSync(req.container_id, req.cmd, Number(req.timeout), signal);
  return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
};
