/**
 * CNI plugin execution with Debian's real bridge + host-local plugins, in a network
 * namespace the test makes itself (`ip netns add`): ADD gives an IP the host can ping, DEL
 * releases the allocation and the veth; a failing plugin in the chain rolls back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseCniConfig } from '../../src/network/cni-config';
import { CniPluginRunner, CniPluginError } from '../../src/network/cni-plugin';
import { bridgePorts, debianCniDir, ipamAllocations, setUpTestCni, writeFailingPlugin } from '../helpers/cni';
import { makeTempDir } from '../helpers/daemon';

function withNetns<T>(body: (name: string, nsPath: string) => Promise<T>): Promise<T> {
  const name = `nodecri-test-${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  return body(name, `/var/run/netns/${name}`).finally(() => execFileSync('ip', ['netns', 'del', name]));
}

test('bridge + host-local: ADD gives a pingable IP, DEL releases everything', async () => {
  const dir = makeTempDir();
  const cni = setUpTestCni(dir);
  try {
    await withNetns(async (name, nsPath) => {
      const net = parseCniConfig(cni.conflistFile, fs.readFileSync(cni.conflistFile, 'utf8'));
      const runner = new CniPluginRunner({ pluginDirs: [debianCniDir], cacheDir: path.join(dir, 'cache'), timeoutMs: 30_000 });
      const req = {
        containerId: 'c'.repeat(64),
        netnsPath: nsPath,
        ifName: 'eth0',
        args: { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'p', K8S_POD_INFRA_CONTAINER_ID: 'c'.repeat(64), K8S_POD_UID: 'u' },
        capabilities: {},
      };
      const result = await runner.add(net, req);
      assert.equal(result.ips.length, 1);
      const ip = result.ips[0].address.split('/')[0];
      assert.ok(ip.startsWith(cni.subnet.split('.').slice(0, 3).join('.')), `${ip} in ${cni.subnet}`);
      assert.deepEqual(ipamAllocations(cni), [ip]);
      execFileSync('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
      const links = execFileSync('ip', ['netns', 'exec', name, 'ip', '-o', 'link'], { encoding: 'utf8' });
      assert.match(links, /eth0@/);
      execFileSync('ping', ['-c', '1', '-W', '2', ip]);
      assert.deepEqual(await runner.cachedResult(net.name, req.containerId, 'eth0').then((r) => r?.ips[0].address), result.ips[0].address);

      await runner.del(net.name, null, req); // from the cache alone, as after a restart
      assert.deepEqual(ipamAllocations(cni), []);
      assert.equal(await runner.cachedResult(net.name, req.containerId, 'eth0'), null);
      assert.deepEqual(bridgePorts(cni.bridge), []);
      await runner.del(net.name, net, req); // idempotent
    });
  } finally {
    cni.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a failing plugin in the chain fails ADD and releases what the others allocated', async () => {
  const dir = makeTempDir();
  const cni = setUpTestCni(dir, { extraPlugins: [{ type: 'nodecri-test-fail' }] });
  writeFailingPlugin(cni);
  try {
    await withNetns(async (_name, nsPath) => {
      const net = parseCniConfig(cni.conflistFile, fs.readFileSync(cni.conflistFile, 'utf8'));
      const runner = new CniPluginRunner({ pluginDirs: [debianCniDir, cni.extraPluginDir], cacheDir: path.join(dir, 'cache'), timeoutMs: 30_000 });
      const req = { containerId: 'd'.repeat(64), netnsPath: nsPath, ifName: 'eth0', args: {}, capabilities: {} };
      await assert.rejects(runner.add(net, req), (e: CniPluginError) => {
        assert.match(e.message, /nodecri-test-fail ADD failed: injected failure/);
        return true;
      });
      assert.deepEqual(ipamAllocations(cni), []);
      assert.deepEqual(bridgePorts(cni.bridge), []);
      assert.equal(fs.existsSync(path.join(dir, 'cache')) ? fs.readdirSync(path.join(dir, 'cache')).length : 0, 0);
    });
  } finally {
    cni.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing plugin is an error naming it and the dirs searched', async () => {
  const dir = makeTempDir();
  try {
    const net = parseCniConfig('x.conflist', JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'no-such-plugin' }] }));
    const runner = new CniPluginRunner({ pluginDirs: [debianCniDir], cacheDir: path.join(dir, 'cache'), timeoutMs: 5000 });
    await assert.rejects(
      runner.add(net, { containerId: 'e', netnsPath: '/proc/self/ns/net', ifName: 'eth0', args: {}, capabilities: {} }),
      /CNI plugin no-such-plugin not found in \/usr\/lib\/cni/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
