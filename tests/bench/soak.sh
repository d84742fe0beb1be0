#!/usr/bin/env bash
# The crash and outage soak: the integration scenarios of tests/integration/test_crashes.py (SIGKILLed
# workers x3, Redis restarted empty, PostgreSQL restarted, a faulty vendor) on bigger jobs. Each scenario
# prints its figures: items, kills/restarts, final statuses, duplicates, mismatches.
#   bash tests/bench/soak.sh [SCALE]     # SCALE 1 = 6,100 items per scenario; default 4 (24,400)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash .ci/services
MEDIAPURGE_SOAK_SCALE="${1:-4}" .venv/bin/pytest -q -s -p no:cacheprovider tests/integration/test_crashes.py 2>&1 \
  | grep -E "items,|passed|failed|Error"
