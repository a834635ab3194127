"""`python -m devstack up [--pipelines FILE] [--dsn DSN] [--faults SPEC]` or `python -m devstack demo`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from devstack.faults import FAULTS, FaultPlan, FaultSpecError
from devstack.stack import Devstack, StackOptions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("up", "run the whole system locally until interrupted"),
                       ("demo", "start devstack, land sample files and a DMS event, report what happened")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--pipelines", type=Path, default=None, help="pipeline catalog (default: chalicelib/pipelines.toml)")
        cmd.add_argument("--dsn", default=None, help="use this PostgreSQL server instead of starting one")
        cmd.add_argument("--api-port", type=int, default=0, help="port of the HTTP API (default: any free port)")
        cmd.add_argument("--faults", default=None, metavar="SPEC",
                         help="inject faults, e.g. dup_s3=0.05,throttle=0.1 or all=0.05 (default: $DEVSTACK_FAULTS); "
                              "kinds: " + ", ".join(FAULTS))
        cmd.add_argument("--faults-seed", type=int, default=0, help="seed of the fault plan's random draws")
    args = parser.parse_args(argv)
    try:
        faults = FaultPlan.parse(args.faults, seed=args.faults_seed) if args.faults is not None else FaultPlan.from_env()
    except FaultSpecError as exc:
        parser.error(str(exc))
    options = StackOptions(dsn=args.dsn, api_port=args.api_port, log_file=Path(".devstack") / "app.log",
                           faults=faults)
    if args.pipelines:
        options.pipelines = args.pipelines.resolve()
    if args.command == "demo":
        from devstack.demo import run_demo

        return run_demo(options)
    return _up(options)


def _up(options: StackOptions) -> int:
    stack = Devstack(options)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        stack.start()
        print(summary(stack), flush=True)
        stopping.wait()
    finally:
        if stack.faults.rates:
            print(f"devstack: faults injected {stack.faults.injected()}", file=sys.stderr)
        print("devstack: stopping and cleaning up", file=sys.stderr)
        stack.stop()
    return 0


def summary(stack: Devstack) -> str:
    from chalicelib import bootstrap

    catalog = bootstrap.catalog()
    lines = [
        f"devstack is up ({stack.startup_seconds:.1f}s)",
        f"  S3/SQS/DynamoDB/EventBridge (moto)  {stack.moto_url}",
        f"  Redshift Data API (PostgreSQL)      {stack.emulator.url}",
        f"  HTTP API                            {stack.api_url}",
        f"  pipelines                           {stack.options.pipelines.name}: "
        + ", ".join(f"{p.name} → {p.table.qualified} (s3://{p.bucket}/{p.prefix})" for p in catalog.loads),
        f"  injected faults                     {stack.faults.describe()}",
        "  environment for your shell:         source .devstack/env",
        f"  the Lambdas' JSON logs               {stack.options.log_file}",
        "  Ctrl-C stops everything and removes its files.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
