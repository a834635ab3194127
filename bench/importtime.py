"""Cold-start import time of app.py with X-Ray tracing off and on, against a bare Chalice + boto3 app.

Each figure is `python -X importtime -c "import app"` in a fresh process: the sum of the cumulative
microseconds of the top-level imports (interpreter start-up included, the same for every variant),
the median of several runs, the variants interleaved so machine noise hits them alike.

- bare:         an app.py that only imports chalice and boto3 and makes a Chalice app
- tracing off:  this app as deployed to a stage without "xray" (no TRACING variable)
- tracing on:   this app with TRACING=xray as a traced Lambda sees it (LAMBDA_TASK_ROOT set: the
                SDK samples by Lambda's segment instead of building X-Ray clients for its own sampler)
- on, outside Lambda (for comparison): the same without LAMBDA_TASK_ROOT

Bytecode: by default every module is compiled once (into a temporary PYTHONPYCACHEPREFIX) and then
read from cache, so the figures are import work only. `--compile` keeps nothing cached, so every run
compiles every module, as a Lambda package without .pyc files does at each cold start.

    .venv/bin/python bench/importtime.py [--runs 15] [--compile]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Sample:
    import_us: int      # -X importtime: top-level cumulative sum (wall clock inside the process)
    wall_s: float       # the whole process, start to exit
    cpu_s: float        # its user + system CPU time: what a loaded machine disturbs least


def measure(cwd: Path, env: dict[str, str]) -> Sample:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"import app failed in {cwd}:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(top_level_us(done.stderr), wall, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--compile", action="store_true", help="cache no bytecode: compile every module each run")
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_XRAY", "TRACING", "LAMBDA_TASK_ROOT", "_X_AMZN", "PYTHONPATH",
                                 "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"))}
    base.update(AWS_DEFAULT_REGION="us-east-1", AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR")
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as pycache:
        base["PYTHONPYCACHEPREFIX"] = pycache  # only this cache is read: the venv's __pycache__ is not used
        if args.compile:
            base["PYTHONDONTWRITEBYTECODE"] = "1"
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
        samples: dict[str, list[Sample]] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, (cwd, env) in variants.items():
                samples[name].append(measure(cwd, env))
    median = {name: statistics.median(s.import_us for s in runs) / 1000 for name, runs in samples.items()}
    best = {name: min(s.import_us for s in runs) / 1000 for name, runs in samples.items()}
    cpu = {name: statistics.median(s.cpu_s for s in runs) * 1000 for name, runs in samples.items()}
    wall = {name: statistics.median(s.wall_s for s in runs) * 1000 for name, runs in samples.items()}
    print(f"python -X importtime -c 'import app', {args.runs} runs per variant, "
          f"{'compiling every module' if args.compile else 'bytecode cached'}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  {'':<28} {'importtime':>10} {'(best)':>8} {'CPU':>8} {'wall':>8}   medians, ms")
    for name in variants:
        print(f"  {name:<28} {median[name]:10.1f} {best[name]:8.1f} {cpu[name]:8.1f} {wall[name]:8.1f}")
    print("  ratios (importtime median; CPU median in brackets)")
    for label, a, b in (("tracing on / tracing off", "tracing on (in Lambda)", "tracing off"),
                        ("tracing off / bare", "tracing off", "bare (chalice + boto3)"),
                        ("tracing on / bare", "tracing on (in Lambda)", "bare (chalice + boto3)"),
                        ("outside Lambda on / off", "tracing on, outside Lambda", "tracing off")):
        ratio = median[a] / median[b]
        print(f"  {label:<28} {ratio:5.2f}x ({(ratio - 1) * 100:+.0f}%)   [{cpu[a] / cpu[b]:5.2f}x]")


if __name__ == "__main__":
    main()
