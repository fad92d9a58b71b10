/**
 * A CNI setup of the test's own: a unique bridge name and subnet, host-local with its data
 * dir in the test's temp dir, the Debian plugins in /usr/lib/cni, and a conflist written to
 * a conf dir. cleanup() removes the bridge (the bridge plugin never deletes it).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export const debianCniDir = '/usr/lib/cni';

export interface TestCni {
  confDir: string;
  conflistFile: string;
  bridge: string;
  subnet: string;
  ipamDataDir: string;
  networkName: string;
  /** extra plugins dir for test-only plugins (e.g. one that fails) */
  extraPluginDir: string;
  cleanup(): void;
}

export function setUpTestCni(dir: string, opts: { extraPlugins?: object[]; name?: string } = {}): TestCni {
  const id = randomBytes(3).toString('hex');
  const bridge = `ncri${id}`;
  // 10.200-239.x.0/24: clear of the conformance kit's 10.88/16 and of common node ranges.
  const subnet = `10.${200 + (parseInt(id.slice(0, 2), 16) % 40)}.${parseInt(id.slice(2, 4), 16)}.0/24`;
  const confDir = path.join(dir, 'cni-conf');
  const ipamDataDir = path.join(dir, 'cni-ipam');
  const extraPluginDir = path.join(dir, 'cni-bin');
  fs.mkdirSync(confDir, { recursive: true });
  fs.mkdirSync(extraPluginDir, { recursive: true });
  const networkName = opts.name ?? `nodecri-test-${id}`;
  const conflist = {
    cniVersion: '1.0.0',
    name: networkName,
    plugins: [
      {
        type: 'bridge',
        bridge,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', dataDir: ipamDataDir, ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      ...(opts.extraPlugins ?? []),
    ],
  };
  const conflistFile = path.join(confDir, '10-test.conflist');
  fs.writeFileSync(conflistFile, JSON.stringify(conflist, null, 1));
  return {
    confDir,
    conflistFile,
    bridge,
    subnet,
    ipamDataDir,
    networkName,
    extraPluginDir,
    cleanup() {
      try {
        execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
      } catch {
        // never created
      }
    },
  };
}

/** Writes a CNI plugin that fails every ADD (and succeeds at DEL) into the extra dir. */
export function writeFailingPlugin(cni: TestCni, type = 'nodecri-test-fail'): string {
  const file = path.join(cni.extraPluginDir, type);
  fs.writeFileSync(
    file,
    `#!/bin/sh\ncat >/dev/null\nif [ "$CNI_COMMAND" = ADD ]; then\n  echo '{"cniVersion":"1.0.0","code":100,"msg":"injected failure"}'\n  exit 1\nfi\nexit 0\n`,
    { mode: 0o755 },
  );
  return type;
}

/** Files host-local keeps for allocated addresses (one per IP), empty when all released. */
export function ipamAllocations(cni: TestCni): string[] {
  const dir = path.join(cni.ipamDataDir, cni.networkName);
  try {
    return fs.readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f) || f.includes(':'));
  } catch {
    return [];
  }
}

/**
 * The host interfaces enslaved to `bridge` (the host ends of the pods' veths), for leak
 * checks: none once every pod on the test's network is gone. Scoped to the test's own
 * bridge, so that other tests' pods on the machine do not count.
 */
export function bridgePorts(bridge: string): string[] {
  try {
    return execFileSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':')[1].trim().split('@')[0])
      .sort();
  } catch {
    return []; // no bridge (yet)
  }
}
