"""Throwaway PostgreSQL for devstack: find the binaries, start, stop, clean up.

PostgreSQL refuses to run as root, so when we are root the data directory is
chowned to an unprivileged account and the server runs as that account. The
first start of a machine runs `initdb` once into a cached template directory;
later starts copy it (about 0.3 s instead of 1.2 s).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MIN_MAJOR_VERSION = 15
# Under the temp dir, not $HOME: as root the server account must be able to
# traverse every parent directory, and /root is private.
TEMPLATE_ROOT = Path(tempfile.gettempdir()) / f"redshift-loader-pg-{os.geteuid()}"
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "timezone": "UTC",
    "max_connections": "300",
    "log_min_messages": "warning",
    "unix_socket_permissions": "0777",
    # Redshift treats backslash in string literals as an escape; match it so
    # literals rendered for Redshift mean the same thing here.
    "standard_conforming_strings": "off",
    "escape_string_warning": "off",
}


class PostgresError(RuntimeError):
    """PostgreSQL could not be found, initialised or started."""


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    major: int

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def find_binaries() -> Binaries:
    """Locate initdb/pg_ctl of PostgreSQL >= 15 (PG_BINDIR, Debian layout, PATH)."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += [Path(p) for p in debian]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            major = _major_version(bindir)
            if major >= MIN_MAJOR_VERSION:
                return Binaries(bindir, major)
    raise PostgresError(
        "PostgreSQL >= 15 server binaries not found (looked in PG_BINDIR, "
        "/usr/lib/postgresql/*/bin and PATH). Run `make postgres` to install them."
    )


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parent.name.split(".")[0])
    except ValueError:
        return 0


def _major_version(bindir: Path) -> int:
    out = subprocess.run([str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True).stdout
    digits = out.strip().split()[-1] if out.strip() else "0"
    try:
        return int(digits.split(".")[0])
    except ValueError:
        return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise PostgresError("running as root and neither a 'postgres' nor a 'nobody' account exists")


def _chown_tree(path: Path, owner: tuple[int, int] | None) -> None:
    if owner is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, *owner)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), *owner)


def _run(cmd: list[str], owner: tuple[int, int] | None, **kwargs) -> subprocess.CompletedProcess[str]:
    if owner is not None:
        kwargs.update(user=owner[0], group=owner[1], extra_groups=[])
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


class PostgresServer:
    """A PostgreSQL server in a temp dir, owned by this process.

    `start()` returns once it accepts connections; `stop()` (also run at exit
    and on SIGINT/SIGTERM via `install_signal_handlers`) removes everything.
    """

    def __init__(self, binaries: Binaries | None = None, port: int | None = None) -> None:
        self.binaries = binaries or find_binaries()
        self.port = port or _free_port()
        self.owner = _run_as()
        self.tmpdir: Path | None = None
        self._stopped = threading.Event()

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    @property
    def datadir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "data"

    def start(self) -> "PostgresServer":
        template = self._template()
        self.tmpdir = Path(tempfile.mkdtemp(prefix="rl-pg-"))
        os.chmod(self.tmpdir, 0o755)
        atexit.register(self.stop)
        shutil.copytree(template, self.datadir, symlinks=True)
        os.chmod(self.datadir, 0o700)
        _chown_tree(self.tmpdir, self.owner)
        options = " ".join(f"-c {k}={v}" for k, v in SERVER_SETTINGS.items())
        cmd = [
            self.binaries.tool("pg_ctl"), "-D", str(self.datadir), "-l", str(self.tmpdir / "log"),
            "-w", "-s", "-t", "30", "-o", f"-k {self.tmpdir} -p {self.port} {options}", "start",
        ]
        result = _run(cmd, self.owner)
        if result.returncode != 0:
            log = (self.tmpdir / "log").read_text(errors="replace") if (self.tmpdir / "log").exists() else ""
            self.stop()
            raise PostgresError(f"pg_ctl start failed: {result.stderr.strip()}\n{log[-2000:]}")
        return self

    def _template(self) -> Path:
        """An initdb'ed data dir for this PostgreSQL version, created once per machine."""
        template = TEMPLATE_ROOT / f"pg{self.binaries.major}-template"
        if (template / "PG_VERSION").exists():
            return template
        TEMPLATE_ROOT.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="rl-pg-init-", dir=TEMPLATE_ROOT))
        os.chmod(staging, 0o755)
        _chown_tree(staging, self.owner)
        datadir = staging / "data"
        cmd = [self.binaries.tool("initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust",
               "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"]
        result = _run(cmd, self.owner)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise PostgresError(f"initdb failed: {result.stderr.strip()}")
        try:
            os.rename(datadir, template)
        except OSError:  # another process won the race; theirs is as good
            pass
        shutil.rmtree(staging, ignore_errors=True)
        return template

    def stop(self) -> None:
        if self._stopped.is_set() or self.tmpdir is None:
            return
        self._stopped.set()
        if (self.datadir / "postmaster.pid").exists():
            _run([self.binaries.tool("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-s", "stop"],
                 self.owner)
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def install_signal_handlers(cleanup) -> None:
    """Run `cleanup` then exit on SIGTERM/SIGINT (Ctrl-C), so temp dirs never leak."""

    def handler(signum: int, _frame: object) -> None:
        cleanup()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise PostgresError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")
