import { invalidArgument } from '../../domain/errors';

/** kubelet's checks of a remote command's streams (validateExecRequest, validateAttachRequest), shared by Exec and Attach. */
export function checkStreamOptions(req: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): void {
  // With a terminal there is one output stream: stdout and stderr cannot be told apart.
  if (req.tty && req.stderr) throw invalidArgument('tty and stderr cannot both be true');
  if (!req.stdin && !req.stdout && !req.stderr) throw invalidArgument('one of stdin, stdout, or stderr must be set');
}
