import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RuntimeError } from '../domain/errors';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, computeCapabilities, type CapabilityRequest } from './capabilities';

const req = (over: Partial<CapabilityRequest>): CapabilityRequest => ({
  defaults: DEFAULT_CAPABILITIES,
  add: [],
  drop: [],
  ambient: [],
  privileged: false,
  uid: 0,
  hostCapabilities: null,
  capLastCap: null,
  ...over,
});
const sorted = (l: readonly string[]) => ALL_CAPABILITIES.filter((c) => l.includes(c));

describe('computeCapabilities', () => {
  it('root gets the default set as bounding, effective and permitted; inheritable and ambient empty', () => {
    const c = computeCapabilities(req({}));
    assert.deepEqual(c.bounding, sorted(DEFAULT_CAPABILITIES));
    assert.equal(c.bounding.length, 9);
    assert.deepEqual(c.effective, c.bounding);
    assert.deepEqual(c.permitted, c.bounding);
    assert.deepEqual([c.inheritable, c.ambient], [[], []]);
  });

  it('add and drop, with or without CAP_, any case', () => {
    const c = computeCapabilities(req({ add: ['NET_ADMIN', 'cap_sys_time', 'CAP_NET_RAW'], drop: ['chown', 'CAP_KILL'] }));
    assert.ok(c.bounding.includes('CAP_NET_ADMIN') && c.bounding.includes('CAP_SYS_TIME') && c.bounding.includes('CAP_NET_RAW'));
    assert.ok(!c.bounding.includes('CAP_CHOWN') && !c.bounding.includes('CAP_KILL'));
    assert.equal(c.bounding.length, 10);
  });

  it('ALL in add or drop, then the named ones', () => {
    assert.deepEqual(computeCapabilities(req({ add: ['ALL'] })).bounding, [...ALL_CAPABILITIES]);
    const allButChown = computeCapabilities(req({ add: ['ALL'], drop: ['CHOWN'] })).bounding;
    assert.equal(allButChown.length, ALL_CAPABILITIES.length - 1);
    assert.ok(!allButChown.includes('CAP_CHOWN'));
    assert.deepEqual(computeCapabilities(req({ drop: ['ALL'] })).bounding, []);
    assert.deepEqual(computeCapabilities(req({ drop: ['all'], add: ['KILL'] })).bounding, ['CAP_KILL']);
  });

  it('a non-root user gets no effective or permitted capabilities', () => {
    const c = computeCapabilities(req({ uid: 1000, add: ['NET_ADMIN'] }));
    assert.ok(c.bounding.includes('CAP_NET_ADMIN'));
    assert.deepEqual([c.effective, c.permitted, c.inheritable, c.ambient], [[], [], [], []]);
  });

  it('ambient capabilities are kept by a non-root user and added to every set', () => {
    const c = computeCapabilities(req({ uid: 1000, drop: ['ALL'], ambient: ['NET_BIND_SERVICE'] }));
    for (const set of [c.bounding, c.effective, c.permitted, c.inheritable, c.ambient]) assert.deepEqual(set, ['CAP_NET_BIND_SERVICE']);
  });

  it('privileged gets every capability the kernel has', () => {
    assert.deepEqual(computeCapabilities(req({ privileged: true, drop: ['ALL'] })).bounding, [...ALL_CAPABILITIES]);
    assert.equal(computeCapabilities(req({ privileged: true, capLastCap: 37 })).bounding.length, 38);
    // a capability past cap_last_cap is not granted even when asked for
    assert.ok(!computeCapabilities(req({ add: ['BPF'], capLastCap: 37 })).bounding.includes('CAP_BPF'));
  });

  it('unknown names are invalid arguments naming them', () => {
    assert.throws(
      () => computeCapabilities(req({ add: ['NET_MAGIC'] })),
      (e: unknown) => e instanceof RuntimeError && e.kind === 'invalid-argument' && e.message === 'capabilities.add_capabilities: unknown capability "NET_MAGIC"',
    );
    assert.throws(() => computeCapabilities(req({ drop: ['CAP_'] })), /drop_capabilities: unknown capability "CAP_"/);
  });
});

describe('host capabilities', () => {
  it('never grants what the daemon lacks, even to privileged containers or ALL', () => {
    const host = ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE');
    for (const r of [req({ privileged: true, hostCapabilities: host }), req({ add: ['ALL'], hostCapabilities: host })]) {
      const caps = computeCapabilities(r);
      assert.ok(!caps.bounding.includes('CAP_SYS_RESOURCE'));
      assert.ok(caps.bounding.includes('CAP_SYS_ADMIN'));
    }
  });
});
