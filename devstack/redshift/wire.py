"""A Redshift-protocol endpoint: what `redshift_connector.connect(...)` talks to locally.

    wire = RedshiftWire(emulator, authenticate=lambda user, password: ...).start()
    redshift_connector.connect(host="127.0.0.1", port=wire.port, database="dev", user=..., password=...,
                               ssl=False)

A small TCP server speaking the PostgreSQL v3 protocol the way Redshift does, in
front of the Data API emulator's databases: the same (cluster or workgroup,
database) → PostgreSQL database mapping, the same SQL rewriting, COPY and UNLOAD.
PostgreSQL itself cannot serve redshift_connector (it rejects the driver's start-up
parameters and Debian's version string; see the reference notes), hence this.

Speaks: SSLRequest (answered "N": plain TCP on loopback, so connect with ssl=False),
start-up (parameters PostgreSQL would reject are accepted and ignored), a cleartext
password exchange checked by `authenticate`, ParameterStatus with server_version
8.0.2 like Redshift, the simple query protocol, the extended protocol as
redshift_connector uses it (Parse/Describe/Sync, Bind/Execute/Sync, Close), and
CancelRequest. Not: SSL, COPY FROM STDIN (Redshift has none either).

Which cluster or workgroup a connection reaches is `resolve_target(database)`:
Redshift endpoints belong to one cluster, the start-up packet names only the database.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from typing import Any

from devstack.redshift.sessions import Target
from devstack.redshift.wirecodec import (
    Column,
    Reader,
    WireFormatError,
    auth_request,
    backend_key,
    column_format,
    command_complete,
    data_row,
    error_response,
    message,
    parameter_description,
    parameter_status,
    ready,
    row_description,
    startup_parameters,
    to_binary,
)
from devstack.redshift.wiresql import Outcome, WireSession, error_fields

log = logging.getLogger(__name__)

PROTOCOL_3 = 196608
SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
SERVER_VERSION = "8.0.2"  # what Redshift reports; redshift_connector parses it
FIRST_PID = 1_073_800_000
MAX_MESSAGE = 1 << 30

Authenticate = Callable[[str, str], bool]


class RedshiftWire:
    """The endpoint. `emulator` is a started RedshiftEmulator; one thread serves each connection."""

    def __init__(self, emulator: Any, *, host: str = "127.0.0.1", port: int = 0,
                 authenticate: Authenticate | None = None,
                 resolve_target: Callable[[str], Target] | None = None) -> None:
        self.emulator = emulator
        self.host, self.port = host, port
        self.authenticate = authenticate or (lambda user, password: True)
        self.resolve_target = resolve_target or (lambda database: Target("cluster", "devstack"))
        self._server: socketserver.ThreadingTCPServer | None = None
        self._sessions: dict[int, tuple[int, WireSession]] = {}  # pid → (cancel secret, session)
        self._lock = threading.Lock()
        self._pids = itertools.count(FIRST_PID)
        self._s3: Any = None

    def start(self) -> "RedshiftWire":
        import boto3

        # Made here, once: creating boto3 clients from several connection threads at once is not safe.
        self._s3 = boto3.client("s3", endpoint_url=self.emulator.engine.s3_endpoint, region_name=self.emulator.region)
        handler = type("Handler", (_Handler,), {"wire": self})
        self._server = _Server((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="redshift-wire", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            sessions, self._sessions = [s for _, s in self._sessions.values()], {}
        for session in sessions:
            try:
                session.close()
            except Exception:
                pass

    def __enter__(self) -> "RedshiftWire":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    # --- used by connections ----------------------------------------------------
    def s3(self) -> Any:
        return self._s3

    def register(self, session: WireSession) -> int:
        secret = secrets.randbits(31)
        with self._lock:
            self._sessions[session.pid] = (secret, session)
        return secret

    def unregister(self, pid: int) -> None:
        with self._lock:
            self._sessions.pop(pid, None)

    def cancel(self, pid: int, secret: int) -> None:
        with self._lock:
            entry = self._sessions.get(pid)
        if entry is not None and entry[0] == secret:
            entry[1].cancel()

    def next_pid(self) -> int:
        return next(self._pids)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _Closed(Exception):
    pass


class _Handler(socketserver.BaseRequestHandler):
    wire: RedshiftWire

    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stream = self.request.makefile("rb")
        self.out = bytearray()
        self.session: WireSession | None = None

    def handle(self) -> None:
        try:
            if self._start():
                self._serve()
        except (_Closed, ConnectionError, OSError):
            pass
        except Exception:
            log.exception("redshift wire connection failed")
        finally:
            if self.session is not None:
                self.wire.unregister(self.session.pid)
                self.session.close()

    # --- framing -----------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        data = self.stream.read(n)
        if data is None or len(data) < n:
            raise _Closed()
        return data

    def _send(self, data: bytes) -> None:
        self.out += data

    def _flush(self) -> None:
        if self.out:
            self.request.sendall(bytes(self.out))
            self.out.clear()

    def _fatal(self, code: str, text: str) -> None:
        self._send(error_response({"S": "FATAL", "V": "FATAL", "C": code, "M": text}))
        self._flush()

    # --- start-up ----------------------------------------------------------------
    def _start(self) -> bool:
        while True:
            (length,) = struct.unpack("!i", self._read(4))
            if not 8 <= length <= 10_000:
                return False
            body = self._read(length - 4)
            (code,) = struct.unpack_from("!i", body)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.request.sendall(b"N")  # no SSL here: clients connect with ssl=False
                continue
            if code == CANCEL_REQUEST:
                pid, secret = struct.unpack_from("!ii", body, 4)
                self.wire.cancel(pid, secret)
                return False
            if code != PROTOCOL_3:
                self._fatal("0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
                return False
            params = startup_parameters(body[4:])
            break
        # Redshift drivers send client_protocol_version, driver_version, os_version, ... : accepted, ignored.
        user, database = params.get("user", ""), params.get("database") or params.get("user", "")
        if not user:
            self._fatal("28000", "no user name in the start-up packet")
            return False
        self._send(auth_request(3))  # cleartext password: loopback only
        self._flush()
        kind, body = self._message()
        password = Reader(body).cstr() if kind == "p" else ""
        if kind != "p" or not self.wire.authenticate(user, password):
            self._fatal("28P01", f'password authentication failed for user "{user}"')
            return False
        try:
            target = self.wire.resolve_target(database)
            self.session = WireSession(self.wire.emulator.databases, target=target, database=database, user=user,
                                       pid=self.wire.next_pid(), s3=self.wire.s3())
        except Exception as exc:
            self._fatal("3D000", f'database "{database}" is not available: {exc}')
            return False
        secret = self.wire.register(self.session)
        self._send(auth_request(0))
        for name, value in (("server_version", SERVER_VERSION), ("server_encoding", "UTF8"),
                            ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY"), ("TimeZone", "UTC"),
                            ("integer_datetimes", "on"), ("standard_conforming_strings", "off"),
                            ("is_superuser", "on"), ("session_authorization", user),
                            ("application_name", params.get("application_name", ""))):
            self._send(parameter_status(name, value))
        self._send(backend_key(self.session.pid, secret))
        self._send(ready("I"))
        self._flush()
        return True

    def _message(self) -> tuple[str, bytes]:
        header = self._read(5)
        kind = header[:1].decode("latin-1")
        (length,) = struct.unpack_from("!i", header, 1)
        if not 4 <= length <= MAX_MESSAGE:
            raise _Closed()
        return kind, self._read(length - 4)

    # --- the query loop ------------------------------------------------------------
    def _serve(self) -> None:
        assert self.session is not None
        session = self.session
        skipping = False  # after an error in the extended protocol, until Sync
        while True:
            kind, body = self._message()
            if kind == "X":
                return
            if kind == "S":
                skipping = False
                self._send(ready(session.transaction_status))
                self._flush()
                continue
            if kind == "H":
                self._flush()
                continue
            if kind == "Q":
                self._simple(Reader(body).cstr())
                continue
            if skipping:
                continue
            try:
                self._extended(kind, Reader(body))
            except _Closed:
                raise
            except Exception as exc:
                self._send(error_response(error_fields(exc)))
                skipping = True

    def _simple(self, sql: str) -> None:
        assert self.session is not None
        try:
            for outcome in self.session.simple_query(sql):
                self._send_outcome(outcome, describe=True)
        except Exception as exc:
            self._send(error_response(error_fields(exc)))
        self._send(ready(self.session.transaction_status))
        self._flush()

    def _extended(self, kind: str, r: Reader) -> None:
        assert self.session is not None
        session = self.session
        if kind == "P":
            name, sql = r.cstr(), r.cstr()
            oids = [r.int32() for _ in range(r.int16())]
            session.parse(name, sql, oids)
            self._send(message(b"1"))
        elif kind == "B":
            portal, statement = r.cstr(), r.cstr()
            formats = [r.int16() for _ in range(r.int16())]
            values: list[bytes | None] = []
            for _ in range(r.int16()):
                size = r.int32()
                values.append(None if size < 0 else r.take(size))
            result_formats = [r.int16() for _ in range(r.int16())]
            session.bind(portal, statement, values, formats, result_formats)
            self._send(message(b"2"))
        elif kind == "D":
            what, name = r.byte(), r.cstr()
            if what == "S":
                oids, columns = session.describe_statement(name)
                self._send(parameter_description(oids))
                self._send(row_description(columns) if columns else message(b"n"))
            else:
                portal = session.describe_portal(name)
                columns = portal.prepared.columns
                self._send(row_description(columns, portal.result_formats) if columns else message(b"n"))
        elif kind == "E":
            name = r.cstr()
            r.int32()  # row limit: results are sent whole
            portal = session.describe_portal(name)
            self._send_outcome(session.execute(name), describe=False, formats=portal.result_formats)
        elif kind == "C":
            what, name = r.byte(), r.cstr()
            if what == "S":
                session.close_statement(name)
            else:
                session.close_portal(name)
            self._send(message(b"3"))
        else:
            raise _Closed()  # COPY data or an unknown message: nothing sensible to answer

    def _send_outcome(self, outcome: Outcome, *, describe: bool, formats: list[int] | None = None) -> None:
        if outcome.empty:
            self._send(message(b"I"))
            return
        rows = [data_row(_encode(row, outcome.columns, formats or [])) for row in outcome.rows]  # may raise
        if describe and outcome.columns:
            self._send(row_description(outcome.columns))
        self._send(b"".join(rows))
        self._send(command_complete(outcome.tag))


def _encode(row: list[bytes | None], columns: list[Column], formats: list[int]) -> list[bytes | None]:
    out: list[bytes | None] = []
    for i, value in enumerate(row):
        if value is None or column_format(formats, i) == 0:
            out.append(value)
            continue
        try:
            out.append(to_binary(columns[i].type_oid, value))
        except (ValueError, WireFormatError) as exc:
            raise WireFormatError(f"column {columns[i].name!r}: {exc}") from None
    return out
