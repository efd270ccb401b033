#!/usr/bin/env bash
# Rebuild the C kernel in place for an editable install (serialised with a
# lock so that several shells can call it at once). Usage: tools/rebuild.sh [python]
set -euo pipefail
py="${1:-python}"
cd "$(dirname "$0")/.."
exec flock /tmp/trilink-build.lock "$py" setup.py -q build_ext --inplace
