/**
 * The domain services the CRI handlers call. Built once by the daemon and handed to every
 * call through its context; the CRI layer holds no state of its own.
 */
import type { ImageService } from '../image/service';
import type { NetworkStatus } from '../network/cni-config';
import type { SandboxService } from '../sandbox/service';
import type { ContainerService } from '../container/service';
import type { EventBus } from '../domain/events';
import type { StreamingUrls } from '../streaming/server';

export interface RuntimeInfo {
  name: string;
  version: string;
  /** The CRI version served, "v1". */
  apiVersion: string;
  cgroupDriver: 'cgroupfs' | 'systemd';
  /** The effective configuration, for Status(verbose). */
  effectiveConfig(): unknown;
}

export interface NetworkService {
  status(): NetworkStatus;
  /** The pod CIDR kubelet sent with UpdateRuntimeConfig ("" when none). */
  podCidr(): string;
  setPodCidr(cidr: string): void;
}

export interface CriDeps {
  runtime: RuntimeInfo;
  network: NetworkService;
  sandboxes: SandboxService;
  containers: ContainerService;
  events: EventBus;
  /** images: pull, list, status, remove, filesystem usage; container rootfs */
  images: ImageService;
  /** the streaming server's single-use URLs for Exec, Attach and PortForward */
  streaming: StreamingUrls;
}
