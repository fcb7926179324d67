export const restoreFlags =
  "With --force (BACKUP_FORCE=true) it uses sys/storage/raft/snapshot-force, which accepts a snapshot from a cluster with different unseal keys.";
