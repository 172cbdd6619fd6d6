"""Write tests/slow_tests.txt, the tests `make test-fast` leaves out, from a pytest run's `--durations` report.

    .venv/bin/pytest -q -m "not browser and not slow" --durations=300 | .venv/bin/python scripts/slow_tests.py

A test whose setup, call and teardown add up to `THRESHOLD_S` or more on this machine is listed; tests already
listed stay listed (they are not in the run that measures). Every test still runs in `make test`.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

THRESHOLD_S = 0.5
LIST = Path(__file__).resolve().parents[1] / "tests" / "slow_tests.txt"
HEADER = (
    "# Tests `make test-fast` leaves out: each took 0.5 s or more on the 2-core machine (scripts/slow_tests.py\n"
    "# writes this file from a `--durations` report). `make test` runs them all.\n"
)
LINE = re.compile(r"^(\d+\.\d+)s (?:setup|call|teardown)\s+(\S+)$")


def main() -> int:
    seconds: dict[str, float] = defaultdict(float)
    for line in sys.stdin:
        if match := LINE.match(line.strip()):
            seconds[match.group(2)] += float(match.group(1))
    listed = LIST.read_text().splitlines() if LIST.exists() else []
    kept = {line for line in listed if line and not line.startswith("#")}
    slow = kept | {test for test, spent in seconds.items() if spent >= THRESHOLD_S}
    LIST.write_text(HEADER + "".join(f"{test}\n" for test in sorted(slow)))
    print(f"{len(slow)} slow tests listed in {LIST.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
