#!/usr/bin/env bash
# Drop-in for the Talend job's Sync_run.sh: the same `--context_param name=value` arguments, e.g.
#   Sync_run.sh --context_param sunbird_cassandra_table="user" --context_param sunbird_sync_object_type="user" \
#               --context_param sunbird_sync_api_key="…" --context_param dry_run=false
# In SyncBin.zip it runs the single executable beside it (no Node.js needed); in a checkout, the sources.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -x "$here/sunbird-dataops" ]; then
  exec "$here/sunbird-dataops" sync "$@"
fi
node_bin="$here/../node_modules/.bin/node"
[ -x "$node_bin" ] || node_bin="node"
exec "$node_bin" "$here/sunbird-dataops.js" sync "$@"
