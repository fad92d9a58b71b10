import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { RuntimeError } from '../domain/errors';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES } from './capabilities';
import { NEVER_ALLOWED, defaultSeccompProfile } from './seccomp-default';
import { profileFromJson, resolveSeccomp, type SeccompChoice } from './seccomp';
import type { OciSeccomp } from './types';

const allowedUnconditionally = (s: OciSeccomp) => new Set(s.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));
const invalid = (re: RegExp) => (e: unknown) => e instanceof RuntimeError && e.kind === 'invalid-argument' && re.test(e.message);

describe('defaultSeccompProfile', () => {
  const base = defaultSeccompProfile({ arch: 'x64', capabilities: DEFAULT_CAPABILITIES });

  it('is an allow-list failing everything else with EPERM', () => {
    assert.equal(base.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(base.defaultErrnoRet, 1);
    assert.deepEqual(base.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    assert.deepEqual(defaultSeccompProfile({ arch: 'arm64', capabilities: [] }).architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    const allowed = allowedUnconditionally(base);
    for (const n of ['read', 'write', 'openat', 'execve', 'futex', 'epoll_pwait', 'socket', 'ptrace', 'rt_sigreturn', 'faccessat2']) {
      assert.ok(allowed.has(n), n);
    }
  });

  it('refuses namespaces, mounts and the other dangerous calls by default', () => {
    const allowed = allowedUnconditionally(base);
    for (const n of [
      'unshare',
      'setns',
      'mount',
      'umount2',
      'pivot_root',
      'keyctl',
      'add_key',
      'request_key',
      'kexec_load',
      'init_module',
      'finit_module',
      'delete_module',
      'bpf',
      'perf_event_open',
      'swapon',
      'swapoff',
      'reboot',
      'clock_settime',
      'settimeofday',
      'acct',
      'lookup_dcookie',
      'open_by_handle_at',
      'userfaultfd',
      'quotactl',
      'iopl',
      'ioperm',
      'personality',
      'clone',
      'clone3',
    ]) {
      assert.ok(!allowed.has(n), n);
    }
  });

  it('allows clone only without namespace flags, and makes clone3 fail with ENOSYS', () => {
    const clone = base.syscalls.find((r) => r.names.includes('clone'));
    assert.deepEqual(clone, { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] });
    assert.deepEqual(
      base.syscalls.find((r) => r.names.includes('clone3')),
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
    );
  });

  it('allows only the harmless personalities', () => {
    const values = base.syscalls.filter((r) => r.names.includes('personality')).map((r) => r.args?.[0]?.value);
    assert.deepEqual(values, [0, 8, 0x20000, 0x20008, 0xffffffff]);
  });

  it('lifts refusals by capability, never the ones that are never safe', () => {
    const all = allowedUnconditionally(defaultSeccompProfile({ arch: 'x64', capabilities: ALL_CAPABILITIES }));
    for (const n of ['unshare', 'mount', 'bpf', 'perf_event_open', 'init_module', 'reboot', 'clock_settime', 'open_by_handle_at', 'iopl', 'chroot']) {
      assert.ok(all.has(n), n);
    }
    for (const n of NEVER_ALLOWED) assert.ok(!all.has(n), n);
    const bpfOnly = allowedUnconditionally(defaultSeccompProfile({ arch: 'x64', capabilities: ['CAP_BPF'] }));
    assert.ok(bpfOnly.has('bpf') && !bpfOnly.has('mount'));
  });

  it('lists no syscall twice', () => {
    const names = base.syscalls.filter((r) => !r.args && r.action === 'SCMP_ACT_ALLOW').flatMap((r) => r.names);
    assert.equal(new Set(names).size, names.length);
  });
});

describe('profileFromJson', () => {
  const ctx = { arch: 'x64', capabilities: ['CAP_CHOWN'] };
  it('reduces a docker-shaped profile for the container', () => {
    const p = profileFromJson(
      {
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: 1,
        archMap: [
          { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86'] },
          { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
        ],
        syscalls: [
          { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', comment: 'basic' },
          { name: 'chown', action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_CHOWN'] } },
          { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
          { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
          { names: ['set_tls'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
          { names: ['socket'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_CHOWN'] } },
          { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }] },
        ],
      },
      '/p.json',
      ctx,
    );
    assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
    assert.deepEqual(
      p.syscalls.map((s) => s.names.join(',')),
      ['read,write', 'chown', 'arch_prctl', 'personality'],
    );
    assert.deepEqual(p.syscalls.at(-1)?.args, [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }]);
  });

  it('refuses what it cannot apply, naming the file', () => {
    assert.throws(() => profileFromJson([], '/p.json', ctx), invalid(/^seccomp profile \/p.json: expected a JSON object/));
    assert.throws(() => profileFromJson({ defaultAction: 'SCMP_ACT_MAYBE' }, '/p.json', ctx), invalid(/unsupported action "SCMP_ACT_MAYBE"/));
    assert.throws(() => profileFromJson({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/l.sock' }, '/p.json', ctx), invalid(/listenerPath/));
    assert.throws(
      () =>
        profileFromJson(
          { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }] },
          '/p.json',
          ctx,
        ),
      invalid(/syscalls\[0\].args\[0\]: index must be 0..5/),
    );
    assert.throws(() => profileFromJson({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ action: 'SCMP_ACT_ERRNO' }] }, '/p.json', ctx), invalid(/syscalls\[0\]: no syscall names/));
  });
});

describe('resolveSeccomp of a Localhost profile', () => {
  const ctx = { arch: 'x64', capabilities: DEFAULT_CAPABILITIES };
  // What src/cri/convert/container.ts makes of a Localhost seccomp message and of a profile path.
  const localhost = (p: string): SeccompChoice => ({ kind: 'localhost', path: p, field: 'linux.security_context.seccomp.localhost_ref' });
  const withDir = async (fn: (dir: string) => Promise<void>) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-seccomp-'));
    try {
      await fn(dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  it('refuses a file that is not JSON naming the field, and never echoes what the file holds', () =>
    withDir(async (dir) => {
      // a secret that is not a profile, as /etc/shadow is
      const secret = path.join(dir, 'shadow');
      fs.writeFileSync(secret, 'hunter2-secret:$6$salt$hash:19000:0:99999:7:::\n');
      for (const [choice, field] of [
        [localhost(secret), 'linux.security_context.seccomp.localhost_ref'],
        [{ kind: 'localhost', path: secret, field: 'linux.security_context.seccomp_profile_path' } as SeccompChoice, 'linux.security_context.seccomp_profile_path'],
      ] as const) {
        await assert.rejects(resolveSeccomp(choice, false, ctx), (e: unknown) => {
          assert.ok(e instanceof RuntimeError && e.kind === 'invalid-argument', String(e));
          assert.equal(e.message, `${field}: seccomp profile ${secret} is not valid JSON`);
          for (const leak of ['hunter2', 'salt', '19000']) assert.ok(!e.message.includes(leak), e.message);
          return true;
        });
      }
    }));

  it('names the field for a missing file, and refuses what is not a regular file or is too big', () =>
    withDir(async (dir) => {
      const field = 'linux.security_context.seccomp.localhost_ref';
      await assert.rejects(resolveSeccomp(localhost(path.join(dir, 'none.json')), false, ctx), invalid(new RegExp(`^${field.replace(/\./g, '\\.')}: .* does not exist$`)));
      const fifo = path.join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      // a FIFO nobody writes would block the read forever; /dev/zero never ends
      for (const p of [fifo, '/dev/zero', dir]) {
        await assert.rejects(resolveSeccomp(localhost(p), false, ctx), invalid(new RegExp(`^${field.replace(/\./g, '\\.')}: seccomp profile .* is not a regular file$`)));
      }
      const big = path.join(dir, 'big.json');
      fs.writeFileSync(big, `{"defaultAction": "SCMP_ACT_ALLOW"${' '.repeat(1024 * 1024)}}`);
      await assert.rejects(resolveSeccomp(localhost(big), false, ctx), invalid(/is larger than 1 MiB$/));
      const bad = path.join(dir, 'bad.json');
      fs.writeFileSync(bad, '{"defaultAction": "SCMP_ACT_MAYBE"}');
      await assert.rejects(
        resolveSeccomp(localhost(bad), false, ctx),
        invalid(new RegExp(`^${field.replace(/\./g, '\\.')}: seccomp profile .*: defaultAction: unsupported action`)),
      );
      const good = path.join(dir, 'good.json');
      fs.writeFileSync(good, '{"defaultAction": "SCMP_ACT_ALLOW"}');
      assert.equal((await resolveSeccomp(localhost(good), false, ctx))?.defaultAction, 'SCMP_ACT_ALLOW');
    }));
});
