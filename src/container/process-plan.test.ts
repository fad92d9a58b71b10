/**
 * The plan step alone: what config.json can say that the container spec never makes
 * (id mappings, a time namespace, a umask, absent optional fields) and the exec plan.
 * The whole chain, field by field, is chain.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OCI_VERSION, type OciSpec } from '../oci/types';
import { cgroupMounts, containerProcessSpec, deviceSpecs, devSymlinks, execProcessSpec } from './process-plan';

const stdio = { stdin: 'null', stdout: 'pipe', stderr: 'pipe' } as const;
const view = { mode: 'v2' as const, paths: { unified: '/sys/fs/cgroup/k/c' } };

function oci(over: Partial<OciSpec['linux']> = {}): OciSpec {
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: { uid: 5, gid: 6, umask: 0o027, additionalGids: [6] },
      args: ['/bin/true'],
      env: ['A=b'],
      cwd: '/',
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits: [],
      noNewPrivileges: false,
    },
    root: { path: '/r', readonly: false },
    mounts: [{ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro'] }],
    linux: {
      namespaces: [{ type: 'mount' }, { type: 'time' }, { type: 'user' }, { type: 'network', path: '/pin/net' }],
      devices: [{ path: '/dev/x', type: 'b', major: 8, minor: 1 }],
      resources: { devices: [] },
      cgroupsPath: '/k/c',
      sysctl: { 'net.ipv4.ip_forward': '1' },
      maskedPaths: [],
      readonlyPaths: [],
      ...over,
    },
    annotations: {},
  };
}

describe('containerProcessSpec', () => {
  it('carries what the container spec never sets: id mappings, umask, absent hostname and propagation', () => {
    const p = containerProcessSpec(
      oci({ uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 200000, size: 10 }] }),
      ['/c.procs'],
      stdio,
      view,
    );
    assert.deepEqual(p.uidMappings, [{ containerId: 0, hostId: 100000, size: 65536 }]);
    assert.deepEqual(p.gidMappings, [{ containerId: 0, hostId: 200000, size: 10 }]);
    assert.equal(p.umask, 0o027);
    assert.deepEqual([p.hostname, p.domainname, p.rootPropagation, p.seccomp, p.oomScoreAdj], [null, null, null, null, null]);
    // the addon has no time namespace: it is left out
    assert.deepEqual(p.namespaces, [
      { type: 'mount', path: null },
      { type: 'user', path: null },
      { type: 'network', path: '/pin/net' },
    ]);
    assert.deepEqual(p.sysctls, { 'net.ipv4.ip_forward': '1' });
    assert.deepEqual(p.mounts, [{ destination: '/sys/fs/cgroup', type: 'cgroup2', source: 'cgroup2', options: ['ro'] }]);
    // nothing at /dev: no symlinks; a device not one of the defaults has no host node to bind
    assert.deepEqual(p.symlinks, []);
    assert.deepEqual(p.devices, [{ path: '/dev/x', type: 'b', major: 8, minor: 1, fileMode: null, uid: null, gid: null, hostPath: null }]);
    assert.deepEqual([p.stdin, p.stdout, p.stderr, p.cgroupProcs], ['null', 'pipe', 'pipe', ['/c.procs']]);
  });

  it('a default device names its host node; /dev/ (with a slash) counts as /dev', () => {
    assert.deepEqual(deviceSpecs([{ path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 }])[0]?.hostPath, '/dev/null');
    // the same path with other numbers is not the default node
    assert.equal(deviceSpecs([{ path: '/dev/null', type: 'c', major: 1, minor: 5 }])[0]?.hostPath, null);
    assert.equal(devSymlinks([{ destination: '/dev/' }]).length, 6);
  });

  it("cgroup v1: a tmpfs with each hierarchy's own dir bound once, read-only unless rw", () => {
    const m = { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['rw'] };
    const out = cgroupMounts(m, { mode: 'v1', paths: { cpu: '/sys/fs/cgroup/cpu,cpuacct/c', cpuacct: '/sys/fs/cgroup/cpu,cpuacct/c', memory: '/sys/fs/cgroup/memory/c' } });
    assert.deepEqual(
      out.map((x) => [x.destination, x.source, x.options.at(-1)]),
      [
        ['/sys/fs/cgroup', 'tmpfs', 'mode=755'],
        ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct/c', 'rw'],
        ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/memory/c', 'rw'],
      ],
    );
  });
});

describe('execProcessSpec', () => {
  it("runs as the container's process does, with its own command, stdio and terminal", () => {
    const e = execProcessSpec(oci(), ['sh'], ['/c.procs'], stdio, true);
    assert.deepEqual([e.args, e.env, e.uid, e.gid, e.additionalGids, e.terminal], [['sh'], ['A=b'], 5, 6, [6], true]);
    assert.ok(!('mounts' in e));
  });
});
