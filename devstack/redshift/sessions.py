"""Databases, connection pools and kept-alive sessions of the emulator.

Every (cluster or workgroup, database) pair the Data API names gets its own
PostgreSQL database, cloned on first use from a template that holds the compat
schema. Names are deterministic (same target + database → same PostgreSQL
database, also across restarts against a user's server) and carry a JSON
comment so ListDatabases can map them back.

A call without a session is a brand-new Redshift session: pooled connections
are `DISCARD ALL`ed before reuse, so TEMP tables and settings never leak
between calls (the mistake tests must be able to catch).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ACCOUNT_ID = "123456789012"  # moto's default account; used in ARNs
MAX_IDLE_PER_DATABASE = 8
MAX_IDLE_TOTAL = 32  # across every database's pool (PostgreSQL's max_connections is 300)
# Redshift semantics every connection starts with (also survives DISCARD ALL,
# which resets to the connection's startup values).
SESSION_OPTIONS = (
    "-c TimeZone=UTC -c DateStyle=ISO,MDY -c IntervalStyle=postgres"
    " -c standard_conforming_strings=off -c escape_string_warning=off"
)


@dataclass(frozen=True)
class Target:
    """A provisioned cluster or a Serverless workgroup, as named in a request."""

    kind: str  # "cluster" | "workgroup"
    name: str

    @classmethod
    def parse(cls, text: str) -> "Target":
        """'cluster:c1' or 'workgroup:analytics' (as used by tests and demos)."""
        kind, _, name = text.partition(":")
        if kind not in ("cluster", "workgroup") or not name:
            raise ValueError(f"target must be 'cluster:<id>' or 'workgroup:<name>', not {text!r}")
        return cls(kind, name)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    def arn(self, region: str) -> str:
        if self.name.startswith("arn:"):
            return self.name
        if self.kind == "cluster":
            return f"arn:aws:redshift:{region}:{ACCOUNT_ID}:cluster:{self.name}"
        return f"arn:aws:redshift-serverless:{region}:{ACCOUNT_ID}:workgroup/{self.name}"


def normalize_database(name: str) -> str:
    # Redshift folds unquoted identifiers, database names included, to lower case.
    return name.lower()


def mapped_name(namespace: str, target: Target, database: str) -> str:
    """PostgreSQL database name for a target + database: safe, unique, ≤ 63 bytes."""
    database = normalize_database(database)
    digest = hashlib.sha1(f"{target.kind}\0{target.name}\0{database}".encode()).hexdigest()[:8]
    prefix = f"{namespace}_{target.kind[0]}_"
    readable = re.sub(r"[^a-z0-9]+", "_", f"{target.name.rsplit('/', 1)[-1]}__{database}".lower()).strip("_")
    readable = readable[: 63 - len(prefix) - len(digest) - 1]
    return f"{prefix}{readable}_{digest}"


class IdleBudget:
    """How many idle connections all pools together may keep.

    Each database has its own pool; a long-lived emulator (a test session) meets hundreds of
    databases, and idle connections kept per database used up PostgreSQL's max_connections
    ("sorry, too many clients already")."""

    def __init__(self, limit: int = MAX_IDLE_TOTAL) -> None:
        self.limit = limit
        self.used = 0
        self.pools: list[Pool] = []
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.limit:
                return False
            self.used += 1
            return True

    def give_back(self, count: int = 1) -> None:
        with self._lock:
            self.used = max(0, self.used - count)

    def join(self, pool: Pool) -> None:
        with self._lock:
            self.pools.append(pool)

    def evict_other(self, requester: Pool) -> bool:
        """Close one idle connection of another database, so the one in use now can stay."""
        with self._lock:
            pools = list(self.pools)
        return any(pool is not requester and pool.evict_one() for pool in pools)


class Pool:
    """Idle connections to one database. Reused connections are reset first."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], budget: IdleBudget | None = None) -> None:
        self._connect = connect
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._budget = budget or IdleBudget()
        self._budget.join(self)

    def acquire(self) -> psycopg.Connection[Any]:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                self._budget.give_back()
                if not conn.closed:
                    return conn
        return self._connect()

    def release(self, conn: psycopg.Connection[Any], reusable: bool = True) -> None:
        """Reset and keep the connection, or close it when it may be in a bad state."""
        if reusable and not conn.closed and not conn.broken:
            try:
                if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                conn.execute("DISCARD ALL")  # a new Redshift session per call: drops TEMP tables
            except psycopg.Error:
                reusable = False
            else:
                # The budget is taken outside this pool's lock: evicting takes another pool's lock.
                if self._budget.take() or (self._budget.evict_other(self) and self._budget.take()):
                    with self._lock:
                        if len(self._idle) < MAX_IDLE_PER_DATABASE:
                            self._idle.append(conn)
                            return
                    self._budget.give_back()
        conn.close()

    def evict_one(self) -> bool:
        """Close this pool's oldest idle connection, if it has one."""
        with self._lock:
            if not self._idle:
                return False
            conn = self._idle.pop(0)
        self._budget.give_back()
        conn.close()
        return True

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        self._budget.give_back(len(idle))
        for conn in idle:
            conn.close()


class Databases:
    """Creates the template and the mapped databases; hands out connections."""

    def __init__(self, admin_dsn: str, namespace: str = "rs") -> None:
        self.admin_dsn = admin_dsn
        self.namespace = namespace
        self.template = f"{namespace}_tpl_{uuid.uuid4().hex[:10]}"
        self._known: dict[str, str] = {}  # target key + database → PostgreSQL name
        self._pools: dict[str, Pool] = {}
        self._idle_budget = IdleBudget()
        self._lock = threading.Lock()
        self._template_settings: list[tuple[str, str]] = []

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Create this instance's template database and install the compat schema in it."""
        with self._admin() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
        try:
            self._prepare_template()
        except BaseException:
            self.stop()  # do not leave a half-built template behind
            raise

    def _prepare_template(self) -> None:
        with psycopg.connect(self.dsn(self.template), autocommit=True) as conn:
            _install_compat(conn)
            # CREATE DATABASE ... TEMPLATE does not copy ALTER DATABASE ... SET
            # (install_compat sets search_path that way), so replay them on each clone.
            rows = conn.execute(
                "SELECT unnest(setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
                " WHERE d.datname = current_database() AND s.setrole = 0"
            ).fetchall()
        self._template_settings = [tuple(r[0].split("=", 1)) for r in rows]  # type: ignore[misc]

    def stop(self) -> None:
        self.close_pools()
        try:
            with self._admin() as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.template)))
        except psycopg.Error:
            pass  # the server may already be gone at interpreter exit

    def close_pools(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def drop_all(self) -> None:
        """Drop every database this instance mapped (tests' reset)."""
        self.close_pools()
        with self._lock:
            names, self._known = list(self._known.values()), {}
        with self._admin() as admin:
            for name in names:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # --- mapping -------------------------------------------------------------

    def ensure(self, target: Target, database: str) -> str:
        """The PostgreSQL database for target + database, created from the template on first use."""
        key = f"{target.key}\0{normalize_database(database)}"
        name = self._known.get(key)
        if name:
            return name
        with self._lock:  # one creator at a time; CREATE DATABASE cannot run in parallel from one template
            name = self._known.get(key)
            if name:
                return name
            name = mapped_name(self.namespace, target, database)
            with self._admin() as admin:
                exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                if not exists:
                    self._create(admin, name, target, database)
            self._known[key] = name
            return name

    def _create(self, admin: psycopg.Connection[Any], name: str, target: Target, database: str) -> None:
        ident = sql.Identifier(name)
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(ident, sql.Identifier(self.template)))
        for setting, value in self._template_settings:
            # search_path is a list setting: its stored text is already valid SQL
            # (`public, rs_compat`); quoting it would make one single schema name.
            rendered = sql.SQL(value) if setting == "search_path" else sql.Literal(value)
            admin.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(ident, sql.Identifier(setting), rendered))
        comment = json.dumps({"emulator": "redshift-data", "target": target.key,
                              "database": normalize_database(database)})
        admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(comment)))

    def redshift_databases(self, target: Target) -> list[str]:
        """Redshift database names that exist for a target (from the mapping comments)."""
        with self._admin() as admin:
            rows = admin.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname LIKE %s",
                (f"{self.namespace}\\_{target.kind[0]}\\_%",),
            ).fetchall()
        names = set()
        for (comment,) in rows:
            try:
                info = json.loads(comment or "")
            except ValueError:
                continue
            if isinstance(info, dict) and info.get("target") == target.key:
                names.add(info["database"])
        return sorted(names)

    # --- connections ---------------------------------------------------------

    def dsn(self, dbname: str) -> str:
        return make_conninfo(self.admin_dsn, dbname=dbname)

    def connect(self, dbname: str) -> psycopg.Connection[Any]:
        params = conninfo_to_dict(self.admin_dsn)
        options = f"{params.get('options', '')} {SESSION_OPTIONS}".strip()
        # prepare_threshold=None: DISCARD ALL between sessions drops server-side prepared
        # statements that psycopg would otherwise still believe exist.
        return psycopg.connect(self.dsn(dbname), autocommit=True, options=options,
                               application_name="redshift-data-emulator", prepare_threshold=None)

    def pool(self, dbname: str) -> Pool:
        with self._lock:
            pool = self._pools.get(dbname)
            if pool is None:
                pool = self._pools[dbname] = Pool(lambda: self.connect(dbname), self._idle_budget)
            return pool

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_dsn, autocommit=True)


def _install_compat(conn: psycopg.Connection[Any]) -> None:
    try:
        from devstack.redshift.compat import install_compat
    except ImportError:  # the SQL-rewriter part is not there yet: plain PostgreSQL
        return
    install_compat(conn)


# --- kept-alive sessions ------------------------------------------------------

@dataclass
class Session:
    """A Redshift session kept open by SessionKeepAliveSeconds; one statement at a time."""

    id: str
    target: Target
    database: str
    db_user: str | None
    secret_arn: str | None
    dbname: str | None
    keep_alive: int
    pid: int
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    expires_at: float = 0.0  # time.monotonic() deadline, counted from the end of the last statement
    conn: psycopg.Connection[Any] | None = None
    busy_with: str | None = None
    closed: bool = False

    @property
    def status(self) -> str:
        return "CLOSED" if self.closed else "BUSY" if self.busy_with else "AVAILABLE"

    def touch(self) -> None:
        self.updated_at = time.time()
        self.expires_at = time.monotonic() + self.keep_alive

    def close(self) -> None:
        self.closed = True
        if self.conn is not None:
            self.conn.close()
            self.conn = None
