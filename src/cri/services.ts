/**
 * Which handler serves which RPC. Every RPC of both services is registered with the gRPC
 * server; an RPC without an entry here answers UNIMPLEMENTED with its name.
 */
import type { AnyHandler, RpcName } from './handlers';
import { attach } from './runtime/attach';
import { containerStats, listContainerStats, streamContainerStats } from './runtime/container-stats';
import { containerStatus } from './runtime/container-status';
import { createContainer } from './runtime/create-container';
import { exec } from './runtime/exec';
import { execSync } from './runtime/exec-sync';
import { getContainerEvents } from './runtime/get-container-events';
import { listContainers, streamContainers } from './runtime/list-containers';
import { listPodSandbox, streamPodSandboxes } from './runtime/list-pod-sandbox';
import { removeContainer } from './runtime/remove-container';
import { reopenContainerLog } from './runtime/reopen-container-log';
import { startContainer } from './runtime/start-container';
import { stopContainer } from './runtime/stop-container';
import { updateContainerResources } from './runtime/update-container-resources';
import { listPodSandboxStats, podSandboxStats, streamPodSandboxStats } from './runtime/pod-sandbox-stats';
import { listMetricDescriptors, listPodSandboxMetrics, streamPodSandboxMetrics } from './runtime/pod-sandbox-metrics';
import { portForward } from './runtime/port-forward';
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
  CreateContainer: createContainer,
  StartContainer: startContainer,
  StopContainer: stopContainer,
  RemoveContainer: removeContainer,
  ContainerStatus: containerStatus,
  ListContainers: listContainers,
  StreamContainers: streamContainers,
  UpdateContainerResources: updateContainerResources,
  ReopenContainerLog: reopenContainerLog,
  ExecSync: execSync,
  Exec: exec,
  Attach: attach,
  PortForward: portForward,
  ContainerStats: containerStats,
  ListContainerStats: listContainerStats,
  StreamContainerStats: streamContainerStats,
  GetContainerEvents: getContainerEvents,
  ListMetricDescriptors: listMetricDescriptors,
  ListPodSandboxMetrics: listPodSandboxMetrics,
  StreamPodSandboxMetrics: streamPodSandboxMetrics,
  ListImages: listImages,
  StreamImages: streamImages,
  ImageStatus: imageStatus,
  PullImage: pullImage,
  RemoveImage: removeImage,
  ImageFsInfo: imageFsInfo,
};
