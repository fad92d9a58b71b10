/**
 * Transitional: src/container/service.ts still imports KeyedLock from here while it is
 * being split; the merge points it at KeyedMutex in util/mutex.ts and deletes this file.
 */
export { KeyedMutex as KeyedLock } from '../util/mutex';
