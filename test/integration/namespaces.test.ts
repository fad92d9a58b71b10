/**
 * Namespace pinning against the real kernel (root): pins are nsfs mounts usable by nsenter
 * and by path (as CNI plugins take CNI_NETNS), sysctls land inside the new namespaces, lo
 * comes up, failures leave nothing, and the event loop keeps running while pins are made.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile as execFileCb, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { inTempDir as inTempDirChecked } from '../helpers/leaks';
import { SyscallError } from '../../src/native/errors';
import { InvalidNamespaceRequestError, bringUpLoopback, pinNamespaces, unpinNamespace, unpinNamespaces, type PinnedNamespaces } from '../../src/native/namespaces';
import { mountTable } from '../helpers/mountinfo';
import { connectInNetns } from '../../src/linux/pod-connect';

const execFile = promisify(execFileCb);

async function sh(cmd: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFile(cmd, args);
  return stdout;
}

const inTempDir = (body: (dir: string) => Promise<void>) => inTempDirChecked('ncri-ns-', body);

interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
}

function mountsUnder(prefix: string): MountInfo[] {
  return mountTable()
    .filter((m) => m.mountPoint === prefix || m.mountPoint.startsWith(`${prefix}/`))
    .map((m) => ({ mountPoint: m.mountPoint, fsType: m.fstype, source: m.source }));
}

function nsInode(p: string): number {
  return statSync(p).ino;
}

const noUser = { uidMap: null, gidMap: null };

test('pins net, ipc and uts as nsfs mounts that nsenter can enter', async () => {
  await inTempDir(async (dir) => {
    const pinDir = path.join(dir, 'pod', 'ns'); // missing parents are created
    const pins = await pinNamespaces({
      types: ['net', 'ipc', 'uts'],
      dir: pinDir,
      sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '123456789' },
      ...noUser,
    });
    try {
      assert.deepEqual(pins, {
        net: path.join(pinDir, 'net'),
        ipc: path.join(pinDir, 'ipc'),
        uts: path.join(pinDir, 'uts'),
        user: null,
        cgroup: null,
      });
      const mounts = mountsUnder(pinDir);
      assert.deepEqual(mounts.map((m) => m.mountPoint).sort(), [pins.ipc, pins.net, pins.uts].sort());
      assert.ok(
        mounts.every((m) => m.fsType === 'nsfs'),
        JSON.stringify(mounts),
      );

      // New namespaces, not the host's.
      assert.notEqual(nsInode(pins.net!), nsInode('/proc/self/ns/net'));
      assert.notEqual(nsInode(pins.ipc!), nsInode('/proc/self/ns/ipc'));
      assert.notEqual(nsInode(pins.uts!), nsInode('/proc/self/ns/uts'));

      const links = (await sh('nsenter', `--net=${pins.net}`, 'ip', '-o', 'link')).trim().split('\n');
      assert.equal(links.length, 1, links.join('\n'));
      assert.match(links[0], /^1: lo: </);

      // The sysctls were written inside the new namespaces, and only there.
      const inside = await sh('nsenter', `--net=${pins.net}`, `--ipc=${pins.ipc}`, 'cat', '/proc/sys/net/ipv4/ip_forward', '/proc/sys/kernel/shmmax');
      assert.deepEqual(inside.trim().split('\n'), ['1', '123456789']);
      assert.notEqual((await fs.readFile('/proc/sys/kernel/shmmax', 'utf8')).trim(), '123456789');

      assert.equal((await sh('nsenter', `--uts=${pins.uts}`, 'hostname')).trim(), os.hostname());
    } finally {
      await unpinNamespaces(pins);
    }
    assert.deepEqual(mountsUnder(pinDir), []);
    assert.deepEqual(await fs.readdir(pinDir), []);
    await fs.rm(path.join(dir, 'pod'), { recursive: true });
  });
});

test('unpinNamespace is idempotent', async () => {
  await inTempDir(async (dir) => {
    const pins = await pinNamespaces({ types: ['net'], dir, sysctls: {}, ...noUser });
    await unpinNamespace(pins.net!);
    await unpinNamespace(pins.net!);
    await unpinNamespace(path.join(dir, 'never-existed'));
    assert.deepEqual(mountsUnder(dir), []);
    await assert.rejects(fs.stat(pins.net!), { code: 'ENOENT' });
  });
});

test('a pinned netns is usable by path, as a CNI plugin gets it in CNI_NETNS', async () => {
  await inTempDir(async (dir) => {
    const pins = await pinNamespaces({ types: ['net'], dir, sysctls: {}, ...noUser });
    const host = `ncri${process.pid % 100000}h`;
    try {
      // iproute2 opens a netns argument containing '/' as a path and setns()es into it,
      // which is what the bridge/ptp plugins do with CNI_NETNS.
      await sh('ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pins.net!);
      const inside = await sh('nsenter', `--net=${pins.net}`, 'ip', '-o', 'link');
      assert.match(inside, /: eth0@/);
      assert.doesNotMatch(await sh('ip', '-o', 'link'), /: eth0@/);
    } finally {
      await sh('ip', 'link', 'del', host).catch(() => undefined);
      await unpinNamespaces(pins);
    }
  });
});

test('bringUpLoopback sets lo UP inside the pinned netns', async () => {
  await inTempDir(async (dir) => {
    const pins = await pinNamespaces({ types: ['net'], dir, sysctls: {}, ...noUser });
    try {
      const flags = async () => /<([^>]*)>/.exec(await sh('nsenter', `--net=${pins.net}`, 'ip', '-o', 'link', 'show', 'lo'))![1].split(',');
      assert.ok(!(await flags()).includes('UP'));
      await bringUpLoopback(pins.net!);
      assert.ok((await flags()).includes('UP'));
      await bringUpLoopback(pins.net!); // already up: fine
      // Bringing lo up is what gives it 127.0.0.1 and the local route.
      assert.match(await sh('nsenter', `--net=${pins.net}`, 'ip', '-o', '-4', 'addr', 'show', 'lo'), /inet 127\.0\.0\.1\/8/);
    } finally {
      await unpinNamespaces(pins);
    }
  });
});

test('bringUpLoopback refuses a path that is not a network namespace', async () => {
  await inTempDir(async (dir) => {
    const pins = await pinNamespaces({ types: ['ipc'], dir, sysctls: {}, ...noUser });
    try {
      await assert.rejects(bringUpLoopback(pins.ipc!), (e: unknown) => {
        assert.ok(e instanceof SyscallError);
        assert.equal(e.code, 'EINVAL');
        assert.equal(e.syscall, 'setns');
        assert.equal(e.path, pins.ipc);
        return true;
      });
      await assert.rejects(bringUpLoopback(path.join(dir, 'missing')), { code: 'ENOENT', path: path.join(dir, 'missing') });
    } finally {
      await unpinNamespaces(pins);
    }
  });
});

test("connectInNetns reaches localhost inside the pinned netns, not the host's; errors name the step and path", async () => {
  await inTempDir(async (dir) => {
    const pins = await pinNamespaces({ types: ['net', 'ipc'], dir, sysctls: {}, ...noUser });
    const host = net.createServer((c) => c.end('host\n'));
    let inside: ReturnType<typeof spawn> | null = null;
    try {
      await bringUpLoopback(pins.net!);
      await new Promise<void>((res) => host.listen(0, '127.0.0.1', res));
      const port = (host.address() as net.AddressInfo).port;
      // The same port on the pod's own localhost, served by a node inside the netns.
      // And a port only on its ::1, which the IPv4 connect misses and the IPv6 one reaches.
      const script = [
        `const net = require('net');`,
        `net.createServer((c) => c.end('pod\\n')).listen(${port}, '127.0.0.1', () =>`,
        `  net.createServer((c) => c.end('pod6\\n')).listen(${port + 1}, '::1', () => console.log('listening')));`,
      ].join('\n');
      const child = spawn('nsenter', [`--net=${pins.net}`, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      inside = child;
      await new Promise<void>((res, rej) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('listening') && res());
        child.once('exit', (code) => rej(new Error(`the listener in the netns exited with ${code}`)));
      });
      const read = async (sock: net.Socket) => {
        let text = '';
        for await (const c of sock) text += String(c);
        return text;
      };
      assert.equal(await read(await connectInNetns(pins.net!, port)), 'pod\n');
      assert.equal(await read(await connectInNetns(null, port)), 'host\n');
      assert.equal(await read(await connectInNetns(pins.net!, port + 1)), 'pod6\n');
      inside.kill();
      await new Promise((res) => inside!.once('exit', res));
      inside = null;
      await assert.rejects(connectInNetns(pins.net!, port), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'ECONNREFUSED');
        assert.match(e.message, /^IPv4: connect ECONNREFUSED 127\.0\.0\.1:\d+; IPv6: connect ECONNREFUSED ::1:\d+$/);
        return true;
      });
      await assert.rejects(connectInNetns(pins.ipc!, port), (e: unknown) => {
        assert.ok(e instanceof SyscallError);
        assert.equal(e.code, 'EINVAL');
        assert.equal(e.syscall, 'setns');
        assert.equal(e.path, pins.ipc);
        assert.match(e.message, /enter network namespace/);
        return true;
      });
      await assert.rejects(connectInNetns(path.join(dir, 'missing'), port), { code: 'ENOENT', path: path.join(dir, 'missing') });
    } finally {
      inside?.kill();
      host.close();
      await unpinNamespaces(pins);
    }
  });
});

test('a sysctl that is not namespaced, malformed, or for a namespace not made is refused before any syscall', async () => {
  await inTempDir(async (dir) => {
    const pinDir = path.join(dir, 'pins');
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ 'kernel.panic': '1' }, /sysctl kernel\.panic is not namespaced/],
      [{ 'vm.swappiness': '1' }, /not namespaced/],
      [{ 'net.ipv4..ip_forward': '1' }, /not a valid sysctl name/],
      [{ 'net.ipv4.conf.all/../x': '1' }, /not a valid sysctl name/],
      [{ 'kernel.shmmax': '1' }, /needs a new ipc namespace/],
    ];
    for (const [sysctls, message] of cases) {
      await assert.rejects(pinNamespaces({ types: ['net'], dir: pinDir, sysctls, ...noUser }), (e: unknown) => {
        assert.ok(e instanceof InvalidNamespaceRequestError);
        assert.match(e.message, message);
        return true;
      });
    }
    await assert.rejects(fs.stat(pinDir), { code: 'ENOENT' });
  });
});

test('a sysctl the kernel does not have fails with a clear error and leaves nothing', async () => {
  await inTempDir(async (dir) => {
    const pinDir = path.join(dir, 'a', 'b');
    await assert.rejects(pinNamespaces({ types: ['net', 'ipc', 'uts'], dir: pinDir, sysctls: { 'net.ipv4.no_such_sysctl': '1' }, ...noUser }), (e: unknown) => {
      assert.ok(e instanceof SyscallError);
      assert.equal(e.code, 'ENOENT');
      assert.equal(e.syscall, 'open');
      assert.equal(e.step, 'apply sysctl');
      assert.equal(e.path, '/proc/sys/net/ipv4/no_such_sysctl');
      assert.match(e.message, /^apply sysctl: open \/proc\/sys\/net\/ipv4\/no_such_sysctl: No such file or directory$/);
      return true;
    });
    // The directories it created are gone too.
    await assert.rejects(fs.stat(path.join(dir, 'a')), { code: 'ENOENT' });
    assert.deepEqual(mountsUnder(dir), []);
  });
});

test('an existing pin is never mounted over (EEXIST) and is left intact', async () => {
  await inTempDir(async (dir) => {
    const first = await pinNamespaces({ types: ['net', 'uts'], dir, sysctls: {}, ...noUser });
    try {
      const ino = nsInode(first.net!);
      await fs.writeFile(path.join(dir, 'ipc'), ''); // not a pin, but in the way
      await assert.rejects(pinNamespaces({ types: ['ipc'], dir, sysctls: {}, ...noUser }), {
        code: 'EEXIST',
        path: path.join(dir, 'ipc'),
      });
      await assert.rejects(pinNamespaces({ types: ['uts', 'net'], dir, sysctls: {}, ...noUser }), { code: 'EEXIST' });
      assert.equal(nsInode(first.net!), ino);
      assert.equal(mountsUnder(dir).length, 2);
      await fs.rm(path.join(dir, 'ipc'));
    } finally {
      await unpinNamespaces(first);
    }
  });
});

test('user namespace: maps written before the others are made, which it then owns', async () => {
  await inTempDir(async (dir) => {
    const map = [{ containerID: 0, hostID: 200000, size: 65536 }];
    const pins = await pinNamespaces({
      types: ['user', 'net', 'ipc', 'uts', 'cgroup'],
      dir,
      sysctls: { 'kernel.shmmax': '7777777', 'net.ipv4.ping_group_range': '0 0' },
      uidMap: map,
      gidMap: map,
    });
    try {
      assert.equal(mountsUnder(dir).length, 5);
      const uidMap = (await sh('nsenter', `--user=${pins.user}`, 'cat', '/proc/self/uid_map', '/proc/self/gid_map', '/proc/self/setgroups')).trim().split('\n');
      assert.deepEqual(
        uidMap.map((l) => l.trim().split(/\s+/).join(' ')),
        ['0 200000 65536', '0 200000 65536', 'deny'],
      );
      assert.notEqual(nsInode(pins.cgroup!), nsInode('/proc/self/ns/cgroup'));
      const inside = await sh('nsenter', `--net=${pins.net}`, `--ipc=${pins.ipc}`, 'cat', '/proc/sys/kernel/shmmax', '/proc/sys/net/ipv4/ping_group_range');
      // ping_group_range was written as "0 0" from inside the user namespace: the host sees
      // those gids through the map.
      assert.deepEqual(
        inside
          .trim()
          .split('\n')
          .map((l) => l.replace(/\s+/g, ' ')),
        ['7777777', '200000 200000'],
      );
      const asRoot = await sh('nsenter', `--user=${pins.user}`, `--net=${pins.net}`, 'cat', '/proc/sys/net/ipv4/ping_group_range');
      assert.equal(asRoot.trim().replace(/\s+/g, ' '), '0 0');
      // The net namespace belongs to the new user namespace: entering both works as its root.
      assert.equal((await sh('nsenter', `--user=${pins.user}`, `--net=${pins.net}`, 'id', '-u')).trim(), '0');
    } finally {
      await unpinNamespaces(pins);
    }
    await assert.rejects(pinNamespaces({ types: ['user', 'net'], dir, sysctls: {}, uidMap: null, gidMap: null }), InvalidNamespaceRequestError);
    // A failure after the id maps (in the child that became root of the user namespace)
    // is reported the same way and undone the same way.
    await assert.rejects(pinNamespaces({ types: ['user', 'ipc'], dir: path.join(dir, 'x'), sysctls: { 'kernel.msg_no_such': '1' }, uidMap: map, gidMap: map }), {
      code: 'ENOENT',
      step: 'apply sysctl',
      path: '/proc/sys/kernel/msg_no_such',
    });
    await assert.rejects(fs.stat(path.join(dir, 'x')), { code: 'ENOENT' });
  });
});

// The event loop's longest gap meanwhile is measured in bench/event-loop-gap.ts, not here.
test('50 pins made in parallel: 50 distinct namespaces, all pinned', async () => {
  await inTempDir(async (dir) => {
    const dirs = Array.from({ length: 50 }, (_, i) => path.join(dir, `pod${i}`));
    const results = await Promise.allSettled(dirs.map((d) => pinNamespaces({ types: ['net', 'ipc', 'uts'], dir: d, sysctls: { 'net.ipv4.ip_forward': '1' }, ...noUser })));
    const pins = results.filter((r): r is PromiseFulfilledResult<PinnedNamespaces> => r.status === 'fulfilled').map((r) => r.value);
    try {
      for (const r of results) if (r.status === 'rejected') throw r.reason;
      assert.equal(mountsUnder(dir).length, 150);
      const netInodes = new Set(pins.map((p) => nsInode(p.net!)));
      assert.equal(netInodes.size, 50);
    } finally {
      await Promise.all(pins.map((p) => unpinNamespaces(p)));
      await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
    }
  });
});
