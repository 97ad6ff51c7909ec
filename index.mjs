import native from "./index.js";

export const {
  Store,
  FsBackend,
  LamportClock,
  createDelta,
  applyDelta,
  isDeltaSmaller,
  streamSnapshotFile,
  acquireLock,
  releaseLock,
  validateOp,
  validateManifest,
  validateSnapshot,
  validateArchiveSegment,
} = native;
export default native;
