/**
 * A pod's network: CNI ADD for its pinned netns with the loaded conflist and the pod's
 * Kubernetes arguments, and DEL with what ADD cached. The loopback interface is brought up
 * by the addon (one ioctl in the netns) rather than by exec'ing the loopback plugin.
 */
import fsp from 'node:fs/promises';
import type { Logger } from '../obs/logger';
import type { CniConfigWatcher, CniNetworkConfig, NetworkStatus } from './cni-config';
import { CniPluginError, type CniPluginRunner, type CniRequest } from './cni-plugin';
import { RuntimeError } from '../domain/errors';

export interface PodNetworkRequest {
  sandboxId: string;
  netnsPath: string;
  podName: string;
  podNamespace: string;
  podUid: string;
  portMappings: { protocol: string; containerPort: number; hostPort: number; hostIp: string }[];
  cgroupPath: string;
}

export interface PodNetworkAttachment {
  name: string;
  ifName: string;
  ips: string[];
  /** the host end of the pod's veth when the plugin made one (bridge, ptp), else null */
  hostVeth: string | null;
}

/**
 * The host peer of the pod interface in a CNI result: bridge and ptp list it, without a
 * sandbox, right before the interface inside the pod.
 */
function hostPeer(interfaces: { name: string; sandbox?: string }[], ifName: string): string | null {
  const i = interfaces.findIndex((x) => x.name === ifName && x.sandbox);
  const prev = i > 0 ? interfaces[i - 1] : undefined;
  return prev && !prev.sandbox ? prev.name : null;
}

export class PodNetwork {
  constructor(
    private readonly watcher: CniConfigWatcher,
    private readonly runner: CniPluginRunner,
    private readonly bringUpLoopback: (netnsPath: string) => Promise<void>,
    private readonly log: Logger,
  ) {}

  /**
   * Traffic of the pod's interface, read from its host veth (a pod's rx is its peer's tx),
   * so no process or setns is needed to look inside the netns. Null without a host veth.
   */
  async usage(attachment: PodNetworkAttachment): Promise<{ rxBytes: bigint; rxErrors: bigint; txBytes: bigint; txErrors: bigint } | null> {
    if (!attachment.hostVeth) return null;
    const dir = `/sys/class/net/${attachment.hostVeth}/statistics`;
    try {
      const [rxBytes, rxErrors, txBytes, txErrors] = await Promise.all(
        ['tx_bytes', 'tx_errors', 'rx_bytes', 'rx_errors'].map(async (f) => BigInt((await fsp.readFile(`${dir}/${f}`, 'utf8')).trim())),
      );
      return { rxBytes, rxErrors, txBytes, txErrors };
    } catch {
      return null;
    }
  }

  status(): NetworkStatus {
    return this.watcher.status();
  }

  /** The loaded config, waiting up to `timeoutMs` for one to appear. */
  waitForConfig(timeoutMs: number, signal: AbortSignal | null): Promise<CniNetworkConfig | null> {
    return this.watcher.waitForConfig(timeoutMs, signal);
  }

  private request(r: PodNetworkRequest): CniRequest {
    return {
      containerId: r.sandboxId,
      netnsPath: r.netnsPath,
      ifName: 'eth0',
      args: {
        K8S_POD_NAMESPACE: r.podNamespace,
        K8S_POD_NAME: r.podName,
        K8S_POD_INFRA_CONTAINER_ID: r.sandboxId,
        K8S_POD_UID: r.podUid,
      },
      capabilities: {
        portMappings: r.portMappings
          .filter((p) => p.hostPort > 0)
          .map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol.toLowerCase(), hostIP: p.hostIp })),
        cgroupPath: r.cgroupPath,
      },
    };
  }

  /**
   * Brings lo up and runs CNI ADD. On failure the plugins have been rolled back (DEL) and
   * nothing is cached.
   */
  async attach(net: CniNetworkConfig, r: PodNetworkRequest): Promise<PodNetworkAttachment> {
    await this.bringUpLoopback(r.netnsPath);
    const result = await this.runner.add(net, this.request(r)).catch((e: unknown) => {
      throw e instanceof CniPluginError ? new RuntimeError('unknown', `pod network ${net.name}: ${e.message}`, { cause: e }) : e;
    });
    const ips = result.ips.map((ip) => ip.address.split('/')[0]);
    this.log.debug({ sandboxId: r.sandboxId, network: net.name, ips }, 'pod network attached');
    return { name: net.name, ifName: 'eth0', ips, hostVeth: hostPeer(result.interfaces, 'eth0') };
  }

  /** CNI DEL of an attachment recorded in an operation's journal (see CniPluginRunner.delRecorded). */
  async detachRecorded(config: Record<string, unknown>, r: PodNetworkRequest): Promise<void> {
    await this.runner.delRecorded(config, this.request(r)).catch((e: unknown) => {
      throw e instanceof CniPluginError ? new RuntimeError('unknown', `pod network ${String(config.name)}: ${e.message}`, { cause: e }) : e;
    });
  }

  /** Removes temp files of cache writes a crash interrupted (before serving only). */
  removeCacheTempFiles(): Promise<string[]> {
    return this.runner.removeTempFiles();
  }

  /** The sandbox ids the CNI cache holds attachments of, each with its DEL (the orphan sweep's). */
  async cachedAttachments(): Promise<Array<{ sandboxId: string; network: string; detach: () => Promise<void> }>> {
    return (await this.runner.cachedEntries()).map((c) => ({ sandboxId: c.containerId, network: c.network, detach: () => this.runner.delCached(c) }));
  }

  /** CNI DEL; idempotent. */
  async detach(attachment: PodNetworkAttachment, r: PodNetworkRequest): Promise<void> {
    await this.runner.del(attachment.name, this.watcher.config(), this.request(r)).catch((e: unknown) => {
      throw e instanceof CniPluginError ? new RuntimeError('unknown', `pod network ${attachment.name}: ${e.message}`, { cause: e }) : e;
    });
  }
}
