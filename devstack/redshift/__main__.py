"""`python -m devstack.redshift`: run the Data API emulator until Ctrl-C / SIGTERM.

Without --dsn it starts its own throwaway PostgreSQL and removes it on exit.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from devstack.redshift.postgres import PostgresServer, install_signal_handlers
from devstack.redshift.server import RedshiftEmulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.redshift", description=__doc__)
    parser.add_argument("--dsn", help="admin DSN of an existing PostgreSQL >= 15 (default: start a throwaway one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="HTTP port (default: any free port)")
    parser.add_argument("--s3-endpoint", help="S3 endpoint for COPY/UNLOAD, e.g. a moto server")
    parser.add_argument("--events-endpoint", help="EventBridge endpoint for WithEvent, e.g. a moto server")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--namespace", default="rs", help="prefix of the PostgreSQL databases it creates")
    parser.add_argument("--until-stdin-closes", action="store_true",
                        help="also stop when stdin closes (a parent process that started this one ended)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)

    pg = None if args.dsn else PostgresServer().start()
    emulator = RedshiftEmulator(
        args.dsn or pg.dsn,  # type: ignore[union-attr]
        s3_endpoint=args.s3_endpoint, events_endpoint=args.events_endpoint,
        region=args.region, host=args.host, port=args.port, namespace=args.namespace,
    )

    def cleanup() -> None:
        emulator.stop()
        if pg is not None:
            pg.stop()

    install_signal_handlers(cleanup)
    try:
        emulator.start()
        print(f"Redshift Data API emulator on {emulator.url}", flush=True)
        if pg is not None:
            print(f"PostgreSQL (throwaway): {pg.dsn}", flush=True)
        print(f"export AWS_ENDPOINT_URL_REDSHIFT_DATA={emulator.url}", flush=True)
        stopped = threading.Event()
        if args.until_stdin_closes:
            threading.Thread(target=lambda: (sys.stdin.read(), stopped.set()), daemon=True).start()
        stopped.wait()
    finally:
        cleanup()


if __name__ == "__main__":
    main()
