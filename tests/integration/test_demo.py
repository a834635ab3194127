"""`make demo` end to end, as a fresh shell runs it: no AWS settings in the environment.

The rest of the suite runs with the session's test credentials set (conftest.py), which hid a
demo that failed every COPY and completion event ('Unable to locate credentials').
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_runs_end_to_end_from_a_bare_environment(tmp_path):
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("AWS_") and name not in ("PIPELINES_FILE", "STAGE", "LOADER_API_URL")}
    env["HOME"] = str(tmp_path)  # no ~/.aws either
    done = subprocess.run([sys.executable, "-m", "devstack", "demo"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "first wave: all jobs finished" in output and "✔ loads finished" in output
    assert "7 of 7 tables copied" in output
    assert "Unable to locate credentials" not in output and "could not put event" not in output
