"""Issue #7's promise under every fault at once: a short soak (bench/soak.py) inside `make test`.

The soak runs in its own process with its own devstack (its own catalog, PostgreSQL and moto),
so it cannot disturb, or be disturbed by, the session's shared stack. Its JSON report says what
was landed, which faults were injected and what the oracle found.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devstack.faults import FAULTS

REPO = Path(__file__).resolve().parents[2]
CI_FAULTS = "all=0.05"  # every fault at 5% of its chances; --cover: each fires at least once


def test_a_short_soak_under_every_fault_loses_nothing_and_loads_nothing_twice(tmp_path):
    out = tmp_path / "soak.json"
    command = [sys.executable, str(REPO / "bench" / "soak.py"), "--files", "200", "--faults", CI_FAULTS,
               "--seed", "7", "--cover", "--bad-rate", "0.02", "--dms-every", "40", "--settle-timeout", "150",
               "--json", str(out)]
    # A stuck soak fails by itself, saying which jobs, batches and files it waited for.
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    printed = done.stdout[-4000:] + done.stderr[-4000:]
    assert out.exists(), printed
    report = json.loads(out.read_text())
    assert report["ok"] and done.returncode == 0, "\n".join(report["problems"][:30]) + "\n" + printed
    assert report["files"] == 201 and report["bad_files"] > 0 and report["dms_runs"] == 5
    missing = sorted(kind for kind in FAULTS if not report["faults"].get(kind))
    assert not missing, f"faults never injected: {missing}\n{printed}"
    assert report["jobs_by_status"].get("FAILED", 0) >= 1  # the bad files, each with its reason (the oracle checks)
