/** Image records as CRI `Image` messages. */
import type { ImageRecord } from '../../image/service';
import type { Image } from '../generated/runtime/v1/Image';

/**
 * The image's user as the CRI wants it: a numeric user (alone or before ":group") is
 * `uid`, a name is `username`; no user gives neither, as containerd answers.
 */
export function imageUser(user: string | undefined): { uid: { value: string } | null; username: string } {
  const u = (user ?? '').split(':')[0];
  if (u === '') return { uid: null, username: '' };
  if (/^\d+$/.test(u)) return { uid: { value: u }, username: '' };
  return { uid: null, username: u };
}

export function toCriImage(rec: ImageRecord, pinned: boolean): Image {
  return {
    id: rec.id,
    repo_tags: rec.repoTags,
    repo_digests: rec.repoDigests,
    size: String(rec.size),
    ...imageUser(rec.config.config?.User),
    spec: { image: rec.id, annotations: {} },
    pinned,
  };
}
