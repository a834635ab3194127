"""Install the Redshift compatibility schema `rs_compat` into a PostgreSQL database.

Every devstack/redshift/compat/*.sql file runs in name order (10_* functions, 15_* system
views, 20_* load views of the COPY part, ...). The files only use CREATE OR REPLACE / IF NOT
EXISTS, so installing twice is harmless. Afterwards the database's default search_path is
`"$user", public, rs_compat`: Redshift SQL finds getdate(), nvl(), svv_table_info ... while
same-named user objects in public still win.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

COMPAT_DIR = Path(__file__).with_name("compat")
SCHEMA = "rs_compat"
SEARCH_PATH = '"$user", public, rs_compat'


def compat_files() -> list[Path]:
    return sorted(COMPAT_DIR.glob("*.sql"))


def install_compat(conn: psycopg.Connection[Any]) -> None:
    """Create or refresh rs_compat in conn's database and put it on the search_path."""
    autocommit = conn.autocommit
    if not autocommit:
        conn.commit()  # ALTER DATABASE below may not mix with the caller's open work
    conn.autocommit = True
    try:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("SET search_path = {}").format(sql.SQL(SEARCH_PATH)))
        for path in compat_files():
            with conn.transaction():
                # Whole file in one simple-query call: the files hold $$ bodies and many statements.
                conn.execute(path.read_text(encoding="utf-8").encode())  # type: ignore[arg-type]
        dbname = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        conn.execute(sql.SQL("ALTER DATABASE {} SET search_path = {}").format(
            sql.Identifier(dbname), sql.SQL(SEARCH_PATH)))
    finally:
        conn.autocommit = autocommit
