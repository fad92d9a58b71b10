import type { Unary } from '../handlers';

export const imageFsInfo: Unary<'ImageFsInfo'> = async (_req, { deps }) => {
  const u = await deps.images.fsUsage();
  const timestamp = String(BigInt(Date.now()) * 1_000_000n);
  return {
    image_filesystems: [{ timestamp, fs_id: { mountpoint: u.mountpoint }, used_bytes: { value: String(u.usedBytes) }, inodes_used: { value: String(u.inodesUsed) } }],
    container_filesystems: [],
  };
};
