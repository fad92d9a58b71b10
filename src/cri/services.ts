/**
 * Which handler serves which RPC. Every RPC of both services is registered with the gRPC
 * server; an RPC without an entry here answers UNIMPLEMENTED with its name.
 */
import type { AnyHandler, RpcName } from './handlers';
import { listPodSandbox, streamPodSandboxes } from './runtime/list-pod-sandbox';
import { listPodSandboxStats, podSandboxStats, streamPodSandboxStats } from './runtime/pod-sandbox-stats';
import { podSandboxStatus } from './runtime/pod-sandbox-status';
import { removePodSandbox } from './runtime/remove-pod-sandbox';
import { runPodSandbox } from './runtime/run-pod-sandbox';
import { imageFsInfo } from './image/image-fs-info';
import { imageStatus } from './image/image-status';
import { listImages } from './image/list-images';
import { pullImage } from './image/pull-image';
import { removeImage } from './image/remove-image';
import { streamImages } from './image/stream-images';
import { runtimeConfig } from './runtime/runtime-config';
import { stopPodSandbox } from './runtime/stop-pod-sandbox';
import { status } from './runtime/status';
import { updatePodSandboxResources } from './runtime/update-pod-sandbox-resources';
import { updateRuntimeConfig } from './runtime/update-runtime-config';
import { version } from './runtime/version';

export const handlers: Partial<Record<RpcName, AnyHandler>> = {
  Version: version,
  Status: status,
  RuntimeConfig: runtimeConfig,
  UpdateRuntimeConfig: updateRuntimeConfig,
  RunPodSandbox: runPodSandbox,
  StopPodSandbox: stopPodSandbox,
  RemovePodSandbox: removePodSandbox,
  PodSandboxStatus: podSandboxStatus,
  ListPodSandbox: listPodSandbox,
  StreamPodSandboxes: streamPodSandboxes,
  PodSandboxStats: podSandboxStats,
  ListPodSandboxStats: listPodSandboxStats,
  StreamPodSandboxStats: streamPodSandboxStats,
  UpdatePodSandboxResources: updatePodSandboxResources,
  ListImages: listImages,
  StreamImages: streamImages,
  ImageStatus: imageStatus,
  PullImage: pullImage,
  RemoveImage: removeImage,
  ImageFsInfo: imageFsInfo,
};
