"""SHOW TABLE / SHOW VIEW / SHOW PROCEDURE text, laid out as Redshift prints it (pure).

Formats follow the Redshift documentation's examples:

    CREATE TABLE public.category (
        catid smallint NOT NULL distkey,
        catgroup character varying(10) ENCODE lzo
    )
    DISTSTYLE KEY
    SORTKEY ( catid );

- a column's ENCODE is the one it was created with, else Redshift's default (RAW for sort key
  columns and BOOLEAN/REAL/DOUBLE PRECISION, AZ64 for integers, DECIMAL, DATE and TIMESTAMP[TZ],
  LZO for CHAR/VARCHAR); RAW is printed only where it is not the default (so re-running the
  DDL gives the same encodings);
- DISTSTYLE is always printed (AUTO when none was given), SORTKEY only when there is one;
- SHOW VIEW prints the stored query (`SELECT ...;`) of an ordinary view and the statement as
  it was sent for late-binding and materialized views (Redshift keeps their text);
- SHOW PROCEDURE prints `CREATE OR REPLACE PROCEDURE schema.name(args) LANGUAGE plpgsql AS $_$...$_$`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TABLE_COLUMN = "Show Table DDL statement"
VIEW_COLUMN = "Show View DDL statement"
PROCEDURE_COLUMN = "Stored Procedure Definition"

_AZ64 = {"int2", "int4", "int8", "numeric", "date", "timestamp", "timestamptz"}
_LZO = {"bpchar", "varchar", "text"}


@dataclass(frozen=True)
class ColumnDef:
    name: str  # quoted where needed
    type: str  # format_type(): `character varying(256)`, `numeric(12,2)`, ...
    base_type: str  # pg_type.typname of the base type (int4, varchar, ...), for the default encoding
    not_null: bool = False
    default: str | None = None  # pg_get_expr() text
    identity: tuple[int, int] | None = None  # (seed, step)
    encoding: str | None = None  # given with ENCODE; None: Redshift's default


@dataclass(frozen=True)
class TableDef:
    schema: str  # quoted where needed
    name: str
    columns: tuple[ColumnDef, ...]
    constraints: tuple[str, ...] = ()  # `PRIMARY KEY (a)`, `UNIQUE (b)`, `FOREIGN KEY (c) REFERENCES ...`
    backup: bool = True
    diststyle: str = "AUTO"
    distkey: str | None = None  # column name, as in ColumnDef.name
    sortstyle: str | None = None  # COMPOUND | INTERLEAVED (None, AUTO: no sort key printed)
    sortkey: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProcedureArg:
    name: str | None  # quoted where needed
    mode: str  # IN | OUT | INOUT
    type: str


@dataclass(frozen=True)
class ProcedureDef:
    schema: str
    name: str
    args: tuple[ProcedureArg, ...]
    body: str
    nonatomic: bool = False
    security_definer: bool = False
    config: tuple[str, ...] = field(default=())  # `SET name TO value` lines


def default_encoding(base_type: str, sortkey: bool) -> str:
    """The encoding Redshift gives a column created without ENCODE."""
    if sortkey:
        return "raw"
    if base_type in _AZ64:
        return "az64"
    if base_type in _LZO:
        return "lzo"
    return "raw"


def render_column(col: ColumnDef, *, distkey: bool, sortkey: bool) -> str:
    parts = [col.name, col.type]
    if col.not_null:
        parts.append("NOT NULL")
    if col.identity is not None:
        parts.append(f"identity({col.identity[0]},{col.identity[1]})")
    elif col.default is not None:
        parts.append(f"DEFAULT {col.default}")
    default = default_encoding(col.base_type, sortkey)
    encoding = (col.encoding or default).lower()
    if encoding != "raw" or default != "raw":
        parts.append(f"ENCODE {encoding}")
    if distkey:
        parts.append("distkey")
    return " ".join(parts)


def render_table(table: TableDef) -> str:
    sort_columns = set(table.sortkey) if table.sortstyle in ("COMPOUND", "INTERLEAVED") else set()
    items = [render_column(c, distkey=c.name == table.distkey and table.diststyle == "KEY",
                           sortkey=c.name in sort_columns) for c in table.columns]
    items += list(table.constraints)
    lines = [f"CREATE TABLE {table.schema}.{table.name} ("]
    lines += [f"    {item}{',' if n < len(items) - 1 else ''}" for n, item in enumerate(items)]
    lines.append(")")
    if not table.backup:
        lines.append("BACKUP NO")
    lines.append(f"DISTSTYLE {table.diststyle}")
    if sort_columns:
        prefix = "INTERLEAVED " if table.sortstyle == "INTERLEAVED" else ""
        lines.append(f"{prefix}SORTKEY ( {', '.join(table.sortkey)} )")
    return "\n".join(lines) + ";"


def render_view(query_def: str) -> str:
    """An ordinary view: its stored query, like pg_get_viewdef(), ending with `;`."""
    text = query_def.strip()
    return text if text.endswith(";") else text + ";"


def render_stored_statement(statement: str) -> str:
    """A late-binding or materialized view: the statement it was created with."""
    return render_view(statement)


def render_procedure(proc: ProcedureDef) -> str:
    args = ", ".join(" ".join(p for p in ((a.mode if a.mode != "IN" else None), a.name, a.type) if p)
                     for a in proc.args)
    lines = [f"CREATE OR REPLACE PROCEDURE {proc.schema}.{proc.name}({args})"]
    if proc.nonatomic:
        lines.append(" NONATOMIC")
    lines.append(" LANGUAGE plpgsql")
    if proc.security_definer:
        lines.append(" SECURITY DEFINER")
    lines += [f" {setting}" for setting in proc.config]
    tag = _dollar_tag(proc.body)
    lines.append(f"AS {tag}{proc.body}{tag}")
    return "\n".join(lines)


def _dollar_tag(body: str) -> str:
    tag, n = "$_$", 0
    while tag in body:
        n += 1
        tag = f"$_{n}$"
    return tag
