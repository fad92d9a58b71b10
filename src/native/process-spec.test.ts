import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as processSpec from './process-spec';
import { CLONE, MS, capabilityMask, parseMountOptions, propagationFlags, rlimitNumber } from './process-spec';

describe('process spec translation', () => {
  it('maps capability names to kernel bits', () => {
    assert.equal(capabilityMask([]), 0n);
    assert.equal(capabilityMask(['CAP_CHOWN']), 1n);
    assert.equal(capabilityMask(['CAP_KILL', 'net_bind_service']), (1n << 5n) | (1n << 10n));
    assert.equal(capabilityMask(['CAP_CHECKPOINT_RESTORE']), 1n << 40n);
    assert.throws(() => capabilityMask(['CAP_NOPE']), /unknown capability CAP_NOPE/);
  });

  it('parses plain mount options into flags and data', () => {
    const o = parseMountOptions(['nosuid', 'strictatime', 'mode=755', 'size=65536k'], 'tmpfs');
    assert.equal(o.flags, MS.NOSUID | MS.STRICTATIME);
    assert.equal(o.data, 'mode=755,size=65536k');
    assert.equal(o.bind, false);
    assert.equal(o.remount, 0);
    assert.equal(parseMountOptions(['ro', 'rw'], 'sysfs').flags, 0);
  });

  it('turns bind options into a bind plus a remount pass', () => {
    const o = parseMountOptions(['rbind', 'ro', 'nosuid', 'rprivate'], null);
    assert.equal(o.bind, true);
    assert.equal(o.flags, MS.BIND | MS.REC);
    assert.equal(o.remount, MS.RDONLY | MS.NOSUID);
    assert.equal(o.propagation, MS.PRIVATE | MS.REC);
    assert.equal(o.data, null);
    const t = parseMountOptions([], 'bind');
    assert.deepEqual([t.bind, t.flags, t.remount], [true, MS.BIND, 0]);
  });

  it('maps propagation, rlimits and namespace flags', () => {
    assert.equal(propagationFlags('rslave'), MS.SLAVE | MS.REC);
    assert.throws(() => propagationFlags('sideways'));
    assert.equal(rlimitNumber('RLIMIT_NOFILE'), 7);
    assert.equal(rlimitNumber('rlimit_nproc'), 6);
    assert.throws(() => rlimitNumber('RLIMIT_FOO'));
    assert.equal(CLONE.NEWPID, 0x20000000);
  });

  it("carries encodings only: no defaults of its own (policy is src/oci/'s, stated in config.json)", () => {
    assert.deepEqual(
      Object.keys(processSpec).filter((k) => /default/i.test(k)),
      [],
    );
  });
});
