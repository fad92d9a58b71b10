/**
 * The cgroup device program the addon assembles (cgroupDeviceProgram is pure: no root, no
 * kernel): its shape, and its verdicts, run by a small interpreter of the few instructions
 * it uses, against the rules read as a v1 devices cgroup reads them (the last matching rule
 * decides). The kernel's verifier and real enforcement are in test/integration/devices.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultDeviceRules, cgroupDeviceRules } from '../oci/devices';
import { type CgroupDeviceRule, cgroupDeviceProgram } from './cgroups';
import { SyscallError } from './errors';

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

function decode(b: Buffer): Insn[] {
  assert.equal(b.length % 8, 0);
  const out: Insn[] = [];
  for (let i = 0; i < b.length; i += 8) {
    out.push({ code: b[i], dst: b[i + 1] & 0xf, src: b[i + 1] >> 4, off: b.readInt16LE(i + 2), imm: b.readInt32LE(i + 4) });
  }
  return out;
}

// linux/bpf.h
const ACC = { m: 1, r: 2, w: 4 } as const;
const DEV = { b: 1, c: 2 } as const;

/** Runs the program on one access; throws on an instruction the generator should not emit. */
function run(prog: Insn[], type: 'b' | 'c', access: number, major: number, minor: number): number {
  const ctx = [(access << 16) | DEV[type], major, minor];
  const r = new Array<number>(11).fill(0);
  for (let pc = 0, steps = 0; pc < prog.length && steps < 10_000; pc++, steps++) {
    const i = prog[pc];
    switch (i.code) {
      case 0x61: // ldx w [src + off]
        assert.equal(i.src, 1, 'loads only from the context');
        r[i.dst] = ctx[i.off / 4] >>> 0;
        break;
      case 0x54: // w(dst) &= imm
        r[i.dst] = (r[i.dst] & i.imm) >>> 0;
        break;
      case 0x74: // w(dst) >>= imm
        r[i.dst] = r[i.dst] >>> i.imm;
        break;
      case 0xbc: // w(dst) = w(src)
        r[i.dst] = r[i.src] >>> 0;
        break;
      case 0xb7: // dst = imm
        r[i.dst] = i.imm;
        break;
      case 0x55: // if dst != imm goto +off
        if (r[i.dst] !== i.imm) pc += i.off;
        break;
      case 0x15: // if dst == imm goto +off
        if (r[i.dst] === i.imm) pc += i.off;
        break;
      case 0x5d: // if dst != src goto +off
        if (r[i.dst] !== r[i.src]) pc += i.off;
        break;
      case 0x95: // exit
        return r[0];
      default:
        throw new Error(`unexpected opcode 0x${i.code.toString(16)} at ${pc}`);
    }
    assert.ok(i.off >= 0, 'jumps only go forward');
  }
  throw new Error('ran off the end of the program');
}

const bits = (access: string): number => [...access].reduce((a, c) => a | ACC[c as keyof typeof ACC], 0);

/** The rules as a v1 devices cgroup written them in order would decide. */
function reference(rules: CgroupDeviceRule[], type: 'b' | 'c', access: number, major: number, minor: number): number {
  let verdict = 0;
  for (const rule of rules) {
    const dev = rule.type === 'a' || (rule.type === type && (rule.major === null || rule.major === major) && (rule.minor === null || rule.minor === minor));
    if (!dev) continue;
    const a = bits(rule.access);
    if (rule.allow ? (access & a) === access : (access & a) !== 0) verdict = rule.allow ? 1 : 0;
  }
  return verdict;
}

const rule = (allow: boolean, type: 'a' | 'b' | 'c', major: number | null, minor: number | null, access: string): CgroupDeviceRule => ({ allow, type, major, minor, access });
const deny = rule(false, 'a', null, null, 'rwm');

describe('cgroup device program', () => {
  it('has the prologue, one block per rule after the last "a" rule, and ends in exit', () => {
    const defaults = cgroupDeviceRules(defaultDeviceRules());
    const prog = decode(cgroupDeviceProgram(defaults));
    // 6 to load type, access, major, minor; each block: the type test, the access test
    // (3, when not rwm), the major and minor tests when set, r0 = verdict, exit; the
    // leading deny-all is the last block (2).
    const blockSize = (r: CgroupDeviceRule) => 1 + (r.access.length === 3 ? 0 : 3) + (r.major === null ? 0 : 1) + (r.minor === null ? 0 : 1) + 2;
    assert.equal(prog.length, 6 + defaults.slice(1).reduce((n, r) => n + blockSize(r), 0) + 2);
    assert.deepEqual(
      prog.slice(0, 6).map((i) => i.code),
      [0x61, 0x54, 0x61, 0x74, 0x61, 0x61],
    );
    assert.deepEqual(
      prog.slice(-2).map((i) => [i.code, i.imm]),
      [
        [0xb7, 0],
        [0x95, 0],
      ],
    );
    // Every jump lands inside the program, on the first instruction of a later block.
    const starts = new Set<number>([prog.length - 2]);
    prog.forEach((i, pc) => {
      if (i.code === 0x95 && pc + 1 < prog.length) starts.add(pc + 1);
    });
    prog.forEach((i, pc) => {
      if ([0x55, 0x15, 0x5d].includes(i.code)) assert.ok(starts.has(pc + 1 + i.off), `jump at ${pc} to a block start`);
    });
  });

  it('allow-all (privileged) is one unconditional block; rules before the last "a" rule are dropped', () => {
    assert.equal(decode(cgroupDeviceProgram([rule(true, 'a', null, null, 'rwm')])).length, 6 + 2);
    const prog = decode(cgroupDeviceProgram([deny, rule(true, 'c', 1, 3, 'rwm'), rule(true, 'a', null, null, 'rwm')]));
    assert.equal(prog.length, 8);
    assert.equal(prog[6].imm, 1);
  });

  it('decides every access as the rules read in order do', () => {
    const sets: CgroupDeviceRule[][] = [
      cgroupDeviceRules(defaultDeviceRules()),
      [...cgroupDeviceRules(defaultDeviceRules()), rule(true, 'b', 7, 0, 'rw'), rule(true, 'c', 10, 183, 'r')],
      [rule(true, 'a', null, null, 'rwm')],
      // an allow-list with holes punched back and partial accesses
      [deny, rule(true, 'c', null, null, 'rwm'), rule(false, 'c', 1, null, 'w'), rule(true, 'c', 1, 3, 'w'), rule(false, 'c', 10, 183, 'rwm'), rule(true, 'b', 7, null, 'rm')],
      // a deny-list
      [rule(true, 'a', null, null, 'rwm'), rule(false, 'b', null, null, 'rw'), rule(false, 'c', 10, null, 'r')],
    ];
    for (const rules of sets) {
      const prog = decode(cgroupDeviceProgram(rules));
      for (const type of ['b', 'c'] as const) {
        for (const major of [1, 5, 7, 10, 136]) {
          for (const minor of [0, 3, 9, 183]) {
            for (let access = 1; access <= 7; access++) {
              assert.equal(
                run(prog, type, access, major, minor),
                reference(rules, type, access, major, minor),
                `${JSON.stringify(rules)}: ${type} ${major}:${minor} access ${access}`,
              );
            }
          }
        }
      }
    }
  });

  it('refuses what it cannot express with EINVAL', () => {
    const einval = (e: unknown) => e instanceof SyscallError && e.code === 'EINVAL' && e.step === 'build device program';
    assert.throws(() => cgroupDeviceProgram([]), einval);
    assert.throws(() => cgroupDeviceProgram([rule(true, 'c', 1, 3, 'rwm')]), einval);
    assert.throws(() => cgroupDeviceProgram([deny, rule(true, 'c', 4096, null, 'r')]), einval);
    assert.throws(() => cgroupDeviceProgram([deny, rule(true, 'c', 1, 1 << 20, 'r')]), einval);
    assert.throws(() => cgroupDeviceProgram([deny, rule(true, 'c', 1, 3, 'rx')]), einval);
    assert.throws(() => cgroupDeviceProgram([deny, rule(true, 'a', 1, null, 'rwm')]), einval);
    assert.throws(() => cgroupDeviceProgram([deny, { ...rule(true, 'c', 1, 3, 'r'), type: 'p' as never }]), einval);
    assert.throws(() => cgroupDeviceProgram([deny, rule(true, 'c', -1, 3, 'r')]), TypeError);
  });
});
