/**
 * Which handler serves which RPC. Every RPC of both services is registered with the gRPC
 * server; an RPC without an entry here answers UNIMPLEMENTED with its name.
 */
import type { AnyHandler, RpcName } from './handlers';
import { imageFsInfo } from './image/image-fs-info';
import { imageStatus } from './image/image-status';
import { listImages } from './image/list-images';
import { pullImage } from './image/pull-image';
import { removeImage } from './image/remove-image';
import { streamImages } from './image/stream-images';
import { runtimeConfig } from './runtime/runtime-config';
import { status } from './runtime/status';
import { updateRuntimeConfig } from './runtime/update-runtime-config';
import { version } from './runtime/version';

export const handlers: Partial<Record<RpcName, AnyHandler>> = {
  Version: version,
  Status: status,
  RuntimeConfig: runtimeConfig,
  UpdateRuntimeConfig: updateRuntimeConfig,
  ListImages: listImages,
  StreamImages: streamImages,
  ImageStatus: imageStatus,
  PullImage: pullImage,
  RemoveImage: removeImage,
  ImageFsInfo: imageFsInfo,
};
