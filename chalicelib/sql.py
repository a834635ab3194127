"""Render the SQL the loader sends to Redshift. Pure: no I/O.

This is the only place that builds SQL text. Identifiers go through
`quote_ident`, literals through `quote_literal`, integers through `int()`;
nothing from a file name, an event or a request is pasted in raw. The only
verbatim text is a catalog's post_load / step statements, which come from the
versioned, validated catalog (a trusted input, like the code itself).

COPY options are parsed here too (`parse_copy_option`): the option grammar and
its canonical rendering belong together, so an option is checked and re-rendered
by the same table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: pipelines imports this module
    from chalicelib.pipelines import LoadPipeline, TableName

IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,126}$")
MAX_BATCH_STATEMENTS = 40  # BatchExecuteStatement accepts 1-40 statements
FORMATS = ("csv", "json", "parquet")
SEQ_COLUMN = "_rl_seq"      # per-file sequence in the upsert staging table (later file = larger)
RANK_COLUMN = "_rl_rank"
LATEST_ALIAS = "_rl_latest"
# Statements of an upsert plan besides the two per file: LOCK, CREATE, ALTER, DELETE, INSERT, DROP.
_UPSERT_FIXED = 6


# ---------------------------------------------------------------- quoting
def is_identifier(name: str) -> bool:
    """A plain identifier Redshift would accept unquoted (and folds to lower case)."""
    return bool(IDENT_RE.match(name))


def quote_ident(name: str) -> str:
    """`Orders` -> `"orders"`. Only plain identifiers: quoting is for safety, not to allow odd names."""
    if not isinstance(name, str) or not IDENT_RE.match(name):
        raise ValueError(f"{name!r} is not a plain SQL identifier (letters, digits, _; not starting with a digit; "
                         f"at most 127 characters)")
    return f'"{name.lower()}"'


def qualified(table: TableName) -> str:
    """TableName('sales', 'orders') -> `"sales"."orders"`."""
    return f"{quote_ident(table.schema)}.{quote_ident(table.name)}"


def quote_literal(value: str) -> str:
    """Single-quoted, with `'` doubled and `\\` doubled (Redshift reads backslash escapes in literals)."""
    if not isinstance(value, str):
        raise ValueError(f"a SQL literal must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"a SQL literal cannot contain a NUL character: {value!r}")
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


# ------------------------------------------------------------ COPY options
@dataclass(frozen=True)
class OptionSpec:
    keyword: str
    arg: str                      # "none" | "int" | "literal" | "char" | "word" | "optional-char"
    formats: tuple[str, ...]      # the formats it is valid for
    words: tuple[str, ...] = ()   # allowed values of a "word" argument
    connector: str = ""           # rendered between keyword and argument ("AS")


_TEXT = ("csv",)
_TEXT_JSON = ("csv", "json")
_ALL = FORMATS
_SPECS: dict[str, OptionSpec] = {s.keyword: s for s in (
    OptionSpec("IGNOREHEADER", "int", _TEXT),
    OptionSpec("GZIP", "none", _TEXT_JSON),
    OptionSpec("BZIP2", "none", _TEXT_JSON),
    OptionSpec("ZSTD", "none", _TEXT_JSON),
    OptionSpec("DELIMITER", "char", _TEXT),
    OptionSpec("QUOTE", "char", _TEXT),
    OptionSpec("NULL", "literal", _TEXT, connector="AS"),
    OptionSpec("EMPTYASNULL", "none", _TEXT_JSON),
    OptionSpec("BLANKSASNULL", "none", _TEXT_JSON),
    OptionSpec("DATEFORMAT", "literal", _TEXT_JSON),
    OptionSpec("TIMEFORMAT", "literal", _TEXT_JSON),
    OptionSpec("TRUNCATECOLUMNS", "none", _TEXT_JSON),
    OptionSpec("ACCEPTINVCHARS", "optional-char", _ALL, connector="AS"),
    OptionSpec("MAXERROR", "int", _TEXT_JSON),
    OptionSpec("ACCEPTANYDATE", "none", _TEXT_JSON),
    OptionSpec("TRIMBLANKS", "none", _TEXT_JSON),
    OptionSpec("FILLRECORD", "none", _TEXT),
    OptionSpec("IGNOREBLANKLINES", "none", _TEXT_JSON),
    OptionSpec("EXPLICIT_IDS", "none", _ALL),
    OptionSpec("REGION", "literal", _ALL),
    OptionSpec("ENCODING", "word", _TEXT_JSON, words=("UTF8",)),
    OptionSpec("COMPUPDATE", "word", _ALL, words=("OFF",)),
    OptionSpec("STATUPDATE", "word", _ALL, words=("OFF",)),
)}
COMPRESSION = frozenset({"GZIP", "BZIP2", "ZSTD"})
ALLOWED_OPTIONS = tuple(_SPECS)
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_LITERAL = r"'((?:[^']|'')*)'"
_OPTION_RE = re.compile(r"^([A-Za-z_0-9]+)(?:\s+(AS)\b)?\s*(.*)$", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class CopyOption:
    """One COPY option, normalized: keyword upper-case, argument as its plain value (unquoted)."""

    keyword: str
    argument: str | None = None

    @property
    def text(self) -> str:
        return render_option(self)

    def __str__(self) -> str:
        return self.text

    def valid_for(self, fmt: str) -> bool:
        return fmt in _SPECS[self.keyword].formats


def parse_copy_option(text: str) -> CopyOption:
    """`"ignoreheader as 1"` -> CopyOption('IGNOREHEADER', '1'). ValueError names what is wrong."""
    raw = text.strip() if isinstance(text, str) else text
    if not isinstance(raw, str) or not raw:
        raise ValueError("empty COPY option")
    m = _OPTION_RE.match(raw)
    keyword = m.group(1).upper() if m else ""
    spec = _SPECS.get(keyword)
    if spec is None:
        raise ValueError(f"COPY option {text!r} is not allowed; allowed: {', '.join(ALLOWED_OPTIONS)}")
    assert m is not None
    has_as, rest = bool(m.group(2)), m.group(3).strip()
    if keyword == "NULL" and not has_as:
        raise ValueError(f"COPY option {text!r}: write it as NULL AS 'string'")
    bad = f"COPY option {text!r}: "
    if spec.arg == "none":
        if has_as or rest:
            raise ValueError(bad + f"{keyword} takes no argument")
        return CopyOption(keyword)
    if spec.arg == "int":
        if not re.fullmatch(r"\d{1,9}", rest):
            raise ValueError(bad + f"{keyword} needs a non-negative whole number")
        return CopyOption(keyword, str(int(rest)))
    if spec.arg == "word":
        if has_as or rest.upper() not in spec.words:
            raise ValueError(bad + f"{keyword} accepts only {' | '.join(spec.words)}")
        return CopyOption(keyword, rest.upper())
    if spec.arg == "optional-char" and not rest and not has_as:
        return CopyOption(keyword)
    lit = re.fullmatch(_LITERAL, rest, re.DOTALL)
    if lit is None:
        # Semicolons, comments or a second option after the argument all end up here.
        raise ValueError(bad + f"{keyword} needs one quoted argument like {keyword} 'x' and nothing after it")
    value = lit.group(1).replace("''", "'")
    if spec.arg in ("char", "optional-char") and len(value) != 1:
        raise ValueError(bad + f"{keyword} needs exactly one character, got {value!r}")
    if keyword == "REGION" and not _REGION_RE.match(value):
        raise ValueError(bad + f"{value!r} is not an AWS Region name like 'us-east-1'")
    if keyword in ("DATEFORMAT", "TIMEFORMAT") and not value.strip():
        raise ValueError(bad + f"{keyword} needs a non-empty format")
    try:
        render_option(CopyOption(keyword, value))  # reject NUL and other unrenderable values now, not at load time
    except ValueError as exc:
        raise ValueError(bad + str(exc)) from None
    return CopyOption(keyword, value)


def render_option(option: CopyOption) -> str:
    """Canonical text: `DELIMITER '|'`, `IGNOREHEADER 1`, `NULL AS '\\\\N'`, `GZIP`."""
    spec = _SPECS.get(option.keyword)
    if spec is None:
        raise ValueError(f"COPY option {option.keyword!r} is not allowed")
    if option.argument is None:
        if spec.arg not in ("none", "optional-char"):
            raise ValueError(f"COPY option {option.keyword} needs an argument")
        return spec.keyword
    if spec.arg == "none":
        raise ValueError(f"COPY option {option.keyword} takes no argument")
    if spec.arg == "int":
        arg = str(int(option.argument))
    elif spec.arg == "word":
        if option.argument.upper() not in spec.words:
            raise ValueError(f"COPY option {option.keyword} accepts only {' | '.join(spec.words)}")
        arg = option.argument.upper()
    else:
        arg = quote_literal(option.argument)
    return " ".join(part for part in (spec.keyword, spec.connector if spec.arg in ("literal", "optional-char")
                                      and spec.connector else "", arg) if part)


# ------------------------------------------------------------------- COPY
_FORMAT_CLAUSE = {"csv": "FORMAT AS CSV", "json": "FORMAT AS JSON 'auto'", "parquet": "FORMAT AS PARQUET"}


def render_copy(target: TableName | str, source_url: str, *, iam_role: str, fmt: str,
                options: Sequence[CopyOption], manifest: bool, columns: Sequence[str] | None = None) -> str:
    """One COPY. `target` is a TableName, or an already quoted name (a staging table we named)."""
    if fmt not in _FORMAT_CLAUSE:
        raise ValueError(f"unknown COPY format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not iam_role:
        raise ValueError(f"COPY into {target if isinstance(target, str) else target.qualified} needs an IAM role "
                         f"(the warehouse's iam_role)")
    if not source_url.startswith("s3://"):
        raise ValueError(f"COPY source must be an s3:// url, got {source_url!r}")
    parts = ["COPY", target if isinstance(target, str) else qualified(target)]
    if columns:
        parts.append("(" + ", ".join(quote_ident(c) for c in columns) + ")")
    parts += ["FROM", quote_literal(source_url), "IAM_ROLE", quote_literal(iam_role), _FORMAT_CLAUSE[fmt]]
    if manifest:
        parts.append("MANIFEST")
    for option in options:
        if not option.valid_for(fmt):
            raise ValueError(f"COPY option {option.text} is not valid for format {fmt}")
        parts.append(render_option(option))
    return " ".join(parts)


def render_manifest(files: Sequence[tuple[str, int]]) -> str:
    """A COPY manifest. `mandatory` so a missing file fails the load instead of being skipped;
    `content_length` because Parquet entries need it (and it costs nothing for the others)."""
    if not files:
        raise ValueError("a manifest needs at least one file")
    entries = [{"url": url, "mandatory": True, "meta": {"content_length": int(size)}} for url, size in files]
    return json.dumps({"entries": entries})


def _is_manifest(url: str) -> bool:
    # The planner writes one manifest per file for upserts (a bare key in COPY is a *prefix*:
    # orders/a.csv would also load orders/a.csv.bak), and names them *.manifest.
    return url.endswith(".manifest")


# -------------------------------------------------------------- load plans
def max_files_per_job(p: LoadPipeline) -> int:
    """Files one job can take: upserts spend two statements per file out of the batch's 40."""
    if p.mode != "upsert":
        return p.batch.max_files
    fit = (MAX_BATCH_STATEMENTS - _UPSERT_FIXED - len(p.post_load)) // 2
    return max(1, min(p.batch.max_files, fit))


def render_load_plan(p: LoadPipeline, *, iam_role: str, files: Sequence[str], manifest_url: str | None,
                     staging_name: str, target_columns: Sequence[str] | None,
                     per_file_manifests: bool | None = None, file_columns: Sequence[str] | None = None,
                     before: Sequence[str] = ()) -> list[str]:
    """The statements of one BatchExecuteStatement (one transaction) loading `files` into `p.table`.

    `files` are s3 urls, oldest first. Append/replace read `manifest_url` when given, else
    the single file. Upsert copies file by file (so the latest file wins) into a temp
    staging table named `staging_name` (already quoted), from each url of `files`; a url
    ending in `.manifest` is read as a manifest (override with `per_file_manifests`).
    `file_columns` (the files' header, checked against the table) is the COPY column list when
    given; `before` runs right after the LOCK (columns a drifted file adds).
    """
    if not files and manifest_url is None:
        raise ValueError(f"pipeline '{p.name}': a load plan needs at least one file")
    target = qualified(p.table)
    statements = [f"LOCK {target}", *before]  # LOCK first: serializes writers, avoids isolation error 1023
    copy_columns = file_columns if file_columns is not None else p.columns

    def copy(into: TableName | str, url: str, manifest: bool, columns: Sequence[str] | None) -> str:
        return render_copy(into, url, iam_role=iam_role, fmt=p.format, options=p.options, manifest=manifest,
                           columns=columns)

    def is_manifest(url: str) -> bool:
        return _is_manifest(url) if per_file_manifests is None else per_file_manifests

    if p.mode in ("append", "replace"):
        if p.mode == "replace":
            statements.append(f"DELETE FROM {target}")  # never TRUNCATE: it commits the transaction
        if manifest_url is not None:
            statements.append(copy(p.table, manifest_url, True, copy_columns))
        elif len(files) == 1:
            statements.append(copy(p.table, files[0], is_manifest(files[0]), copy_columns))
        else:
            raise ValueError(f"pipeline '{p.name}': {len(files)} files need a manifest_url (one COPY per load)")
    elif p.mode == "upsert":
        statements += _upsert(p, target, files, staging_name, target_columns, copy, is_manifest, file_columns)
    else:
        raise ValueError(f"pipeline '{p.name}': unknown mode {p.mode!r}")
    statements += list(p.post_load)
    if len(statements) > MAX_BATCH_STATEMENTS:
        raise ValueError(f"pipeline '{p.name}': the plan has {len(statements)} statements; a batch allows "
                         f"{MAX_BATCH_STATEMENTS} (at most {max_files_per_job(p)} files per job)")
    return statements


def _upsert(p: LoadPipeline, target: str, files: Sequence[str], staging: str, target_columns: Sequence[str] | None,
            copy: object, is_manifest: object, file_columns: Sequence[str] | None = None) -> list[str]:
    if target_columns is None:
        raise ValueError(f"pipeline '{p.name}': an upsert plan needs the target table's columns")
    if not files:
        raise ValueError(f"pipeline '{p.name}': an upsert plan needs at least one file")
    names = [c.lower() for c in target_columns]
    for needed in (*p.keys, *((p.order_by,) if p.order_by else ())):
        if needed.lower() not in names:
            raise ValueError(f"pipeline '{p.name}': column {needed!r} is not among the target columns "
                             f"({', '.join(names)})")
    seq = quote_ident(SEQ_COLUMN)
    cols = ", ".join(quote_ident(c) for c in target_columns)
    out = [f"CREATE TEMP TABLE {staging} (LIKE {target} INCLUDING DEFAULTS)",
           f"ALTER TABLE {staging} ADD COLUMN {seq} INTEGER"]
    for i, url in enumerate(files, start=1):
        out.append(copy(staging, url, is_manifest(url), file_columns or target_columns))  # type: ignore[operator]
        # Rows just copied are the only ones without a sequence: stamp them with the file's position.
        out.append(f"UPDATE {staging} SET {seq} = {int(i)} WHERE {seq} IS NULL")
    match = " AND ".join(f"{target}.{quote_ident(k)} = {staging}.{quote_ident(k)}" for k in p.keys)
    order = ([f"{quote_ident(p.order_by)} DESC NULLS LAST"] if p.order_by else []) + [f"{seq} DESC"]
    partition = ", ".join(quote_ident(k) for k in p.keys)
    latest, rank = quote_ident(LATEST_ALIAS), quote_ident(RANK_COLUMN)
    ranked = (f"(SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {', '.join(order)}) AS {rank} "
              f"FROM {staging}) AS {latest}")
    if not p.order_by:
        out.append(f"DELETE FROM {target} USING {staging} WHERE {match}")
        out.append(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {ranked} WHERE {rank} = 1")
    else:
        # Files can load out of order (a late or re-delivered event puts an older file in a later job):
        # a row only replaces a row that is not newer by order_by, and a key whose stored row is newer
        # keeps it. (NULL is oldest; on a tie the later load wins.)
        newest = quote_ident(p.order_by)
        out.append(f"DELETE FROM {target} USING {staging} WHERE {match} AND "
                   f"({target}.{newest} IS NULL OR {target}.{newest} <= {staging}.{newest})")
        kept = " AND ".join(f"{target}.{quote_ident(k)} = {latest}.{quote_ident(k)}" for k in p.keys)
        latest_cols = ", ".join(f"{latest}.{quote_ident(c)}" for c in target_columns)
        out.append(f"INSERT INTO {target} ({cols}) SELECT {latest_cols} FROM {ranked} LEFT JOIN {target} ON {kept} "
                   f"WHERE {latest}.{rank} = 1 AND {target}.{quote_ident(p.keys[0])} IS NULL")
    out.append(f"DROP TABLE {staging}")
    return out


# ------------------------------------------------------------- diagnostics
def _query_ids(query_ids: Iterable[int]) -> list[int]:
    ids = []
    for q in query_ids:
        if isinstance(q, bool):
            raise ValueError(f"query id must be an integer, got {q!r}")
        ids.append(int(q))  # int() so nothing but digits reaches the SQL
    if not ids:
        raise ValueError("need at least one query id")
    return ids


def render_load_errors_query(query_ids: Iterable[int], *, limit: int = 100) -> str:
    """Bad rows of failed COPYs from SYS_LOAD_ERROR_DETAIL (works on Serverless and provisioned)."""
    ids = ", ".join(str(i) for i in _query_ids(query_ids))
    return ("SELECT query_id, TRIM(file_name) AS file_name, line_number, TRIM(column_name) AS column_name, "
            "error_code, TRIM(error_message) AS error_message FROM sys_load_error_detail "
            f"WHERE query_id IN ({ids}) ORDER BY query_id, line_number LIMIT {int(limit)}")


def render_stl_load_errors_query(query_id: int, *, limit: int = 100) -> str:
    """The provisioned-cluster view STL_LOAD_ERRORS, which also keeps the raw field value."""
    (qid,) = _query_ids([query_id])
    return ("SELECT query, TRIM(filename) AS filename, line_number, TRIM(colname) AS colname, "
            "TRIM(raw_field_value) AS raw_field_value, err_code, TRIM(err_reason) AS err_reason "
            f"FROM stl_load_errors WHERE query = {qid} ORDER BY line_number LIMIT {int(limit)}")


def render_call(step: str) -> str:
    """A catalog step as sent: one statement without its trailing `;` (the Data API adds none)."""
    text = step.strip()
    if text.endswith(";"):
        text = text[:-1].rstrip()
    if not text:
        raise ValueError("empty statement")
    return text
