#!/bin/bash
# tests/vm/pvrdma/probe.sh - (host) run one outer.sh mode in a fresh bed guest.
#   probe.sh realize|reg|cm|pipe      (VM_TIMEOUT default 1500 s, VM_MEM 3G)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
"$HERE/build-module.sh" >/dev/null || exit 1
cd "$ROOT" || exit 1
export VM_TIMEOUT=${VM_TIMEOUT:-1500} VM_MEM=${VM_MEM:-3G}
export VM_PASSENV="BUILD NESTED_TIMEOUT NESTED_MEM ${VM_PASSENV:-}"
exec "$ROOT/tests/vm/vmrun.sh" "$HERE/outer.sh" "${1:-realize}"
