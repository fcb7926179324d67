export const restoreFlags =
  "With --force (BACKUP_FORCE=true) it uses sys/storage/raft/snapshot-force, which accepts a snapshot from a cluster with different unseal keys; OpenBao then seals itself, and --expect-sealed ends the run there instead of waiting for the members to serve. --key latest restores the newest verified backup of --source-cluster in --source-namespace (default --cluster, --namespace) and reports the key it chose.";

export const outsideKubernetes =
  "Outside Kubernetes (no Job mounts): give the members with --openbao-addresses, a token with --auth-method token and --token-file <file> or the environment variable BAO_TOKEN, storage credentials with --credentials-dir or the provider's own credential chain (AWS_* variables or profile, GOOGLE_APPLICATION_CREDENTIALS, Azure environment or CLI). The JSON result line is written to --termination-message-path only when given (or when /dev/termination-log exists).";
