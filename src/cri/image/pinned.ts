import type { CriDeps } from '../deps';
import type { ImageRecord } from '../../image/service';

/** The pause image is pinned: kubelet's image garbage collection must not remove it. */
export function isPinned(deps: CriDeps, rec: ImageRecord): boolean {
  return rec.repoTags.includes(deps.images.pauseImageTag());
}
