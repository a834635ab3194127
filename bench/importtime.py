"""Cold-start import time of app.py with X-Ray tracing off and on, against a bare Chalice + boto3 app.

Each figure is `python -X importtime -c "import app"` in a fresh process: the sum of the cumulative
microseconds of the top-level imports (interpreter start-up included, the same for every variant),
the median of several runs, the variants interleaved so machine noise hits them alike.

- bare:         an app.py that only imports chalice and boto3 and makes a Chalice app
- tracing off:  this app as deployed to a stage without "xray" (no TRACING variable)
- tracing on:   this app with TRACING=xray as a traced Lambda sees it (LAMBDA_TASK_ROOT set: the
                SDK samples by Lambda's segment instead of building X-Ray clients for its own sampler)
- on, outside Lambda (for comparison): the same without LAMBDA_TASK_ROOT

    .venv/bin/python bench/importtime.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BARE_APP = 'from chalice import Chalice\nimport boto3\n\napp = Chalice(app_name="bare")\n'


def top_level_us(stderr: str) -> int:
    """Sum of the cumulative column over imports at nesting level 0."""
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|", 2)
        if not name.startswith("  "):  # one space: top level; nested imports are indented further
            total += int(cumulative)
    return total


def measure(cwd: Path, env: dict[str, str]) -> tuple[int, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import app failed in {cwd}:\n{done.stderr[-2000:]}")
    return top_level_us(done.stderr), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_XRAY", "TRACING", "LAMBDA_TASK_ROOT", "_X_AMZN", "PYTHONPATH"))}
    base.update(AWS_DEFAULT_REGION="us-east-1", AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        bare_dir = Path(tmp)
        (bare_dir / "app.py").write_text(BARE_APP)
        variants = {
            "bare (chalice + boto3)": (bare_dir, base),
            "tracing off": (REPO, base),
            "tracing on (in Lambda)": (REPO, {**base, "TRACING": "xray", "LAMBDA_TASK_ROOT": str(REPO)}),
            "tracing on, outside Lambda": (REPO, {**base, "TRACING": "xray"}),
        }
        for cwd, env in variants.values():  # warm the bytecode caches; not counted
            measure(cwd, env)
        samples: dict[str, list[tuple[int, float]]] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, (cwd, env) in variants.items():
                samples[name].append(measure(cwd, env))
    median = {name: statistics.median(us for us, _ in runs) / 1000 for name, runs in samples.items()}
    wall = {name: statistics.median(w for _, w in runs) * 1000 for name, runs in samples.items()}
    print(f"python -X importtime -c 'import app': sum of top-level cumulative times, median of {args.runs} runs")
    for name in variants:
        print(f"  {name:<28} {median[name]:7.1f} ms   (process wall {wall[name]:6.1f} ms)")
    bare, off, on = median["bare (chalice + boto3)"], median["tracing off"], median["tracing on (in Lambda)"]
    print(f"  tracing on / tracing off   {on / off:5.2f}x  ({(on / off - 1) * 100:+.0f}%)")
    print(f"  tracing off / bare         {off / bare:5.2f}x  ({(off / bare - 1) * 100:+.0f}%)")
    print(f"  tracing on / bare          {on / bare:5.2f}x  ({(on / bare - 1) * 100:+.0f}%)")
    print(f"  outside Lambda, on / off   {median['tracing on, outside Lambda'] / off:5.2f}x")


if __name__ == "__main__":
    main()
