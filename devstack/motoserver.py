"""moto in its own process: `python -m devstack.motoserver` prints its URL, serves until stdin closes.

In-process, moto shares the interpreter lock with the emulator and the app's Lambdas; under a
burst of files its request threads starve them (a 200-file COPY took 16 s instead of 1.3 s).
A separate process gives it its own core.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from typing import Any


def patch_moto() -> None:
    """devstack's fixes to moto, in the process that serves it: DynamoDB and SQS made thread-safe,
    DynamoDB O(items touched) per transaction, SQS made O(queue length) per request, less work per request."""
    from devstack.motolocks import serialize_dynamodb, serialize_sqs
    from devstack.motospeed import speed_up_moto

    serialize_dynamodb()
    serialize_sqs()
    speed_up_moto()


def main() -> None:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    patch_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"http://{host}:{port}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    server.stop()


class MotoProcess:
    """A moto server in a child process; stops with the parent (stdin closes) or on stop()."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._proc: subprocess.Popen[str] = subprocess.Popen(
            [sys.executable, "-m", "devstack.motoserver"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env=env)
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError("moto server process did not start")

    def stop(self, *_: Any) -> None:
        if self._proc.poll() is None:
            try:
                if self._proc.stdin:
                    self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()


if __name__ == "__main__":
    main()
