import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kernelFloorError, probeSyscalls, type SyscallProbe } from './probe';

const ok = (name: string, since: string): SyscallProbe => ({ name, since, supported: true, errno: 0 });
const no = (name: string, since: string, errno = 38): SyscallProbe => ({ name, since, supported: false, errno });

describe('kernel floor', () => {
  it('passes when every syscall is there', () => {
    assert.equal(kernelFloorError([ok('close_range', '5.9'), ok('openat2(RESOLVE_IN_ROOT)', '5.6')], '6.1.0'), null);
  });

  it('names every missing syscall and the release that has them all', () => {
    const msg = kernelFloorError(
      [ok('clone3', '5.3'), no('close_range', '5.9'), no('close_range(CLOSE_RANGE_CLOEXEC)', '5.11', 22), no('openat2(RESOLVE_IN_ROOT)', '5.6')],
      '5.4.0-150-generic',
    );
    assert.equal(
      msg,
      'kernel 5.4.0-150-generic lacks close_range (Linux 5.9), close_range(CLOSE_RANGE_CLOEXEC) (Linux 5.11), openat2(RESOLVE_IN_ROOT) (Linux 5.6): nodecri needs Linux 5.11 or newer',
    );
    assert.match(kernelFloorError([no('mount_setattr', '5.12')], '5.10.0')!, /lacks mount_setattr \(Linux 5\.12\).*needs Linux 5\.12/);
  });

  it('finds everything on this host', () => {
    const probes = probeSyscalls();
    assert.ok(probes.some((p) => p.name === 'close_range(CLOSE_RANGE_CLOEXEC)'));
    assert.ok(probes.some((p) => p.name === 'mount_setattr'));
    assert.deepEqual(
      probes.filter((p) => !p.supported),
      [],
    );
  });
});
