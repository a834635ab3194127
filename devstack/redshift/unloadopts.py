"""Parse a Redshift UNLOAD statement into an `UnloadSpec`.

    UNLOAD ('select ...') TO 's3://bucket/prefix' authorization [ option ... ]

Same hand-written approach (and cursor) as COPY's parser; invalid combinations are refused
with the option named, as Redshift does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devstack.redshift.contracts import RedshiftError, UnsupportedSql
from devstack.redshift.copyopts import _Cursor, identifier, unquote_string
from devstack.redshift.sqltokens import NUMBER, QIDENT, STRING, WORD, tokenize

MB = 1024 * 1024
MIN_FILE_SIZE, MAX_FILE_SIZE = 5 * MB, int(6.2 * 1024 * MB)
COMPRESSIONS = ("GZIP", "BZIP2", "ZSTD")


@dataclass
class UnloadSpec:
    query: str
    destination: str
    fmt: str = "TEXT"
    header: bool = False
    delimiter: str | None = None
    null_as: str | None = None
    add_quotes: bool = False
    escape: bool = False
    compression: str | None = None
    parallel: bool = True
    max_file_size: int = MAX_FILE_SIZE
    manifest: bool = False
    verbose: bool = False
    allow_overwrite: bool = False
    clean_path: bool = False
    partition_by: list[str] = field(default_factory=list)
    partition_include: bool = False
    kms_key_id: str | None = None
    encrypted: bool = False
    extension: str | None = None
    seen: set[str] = field(default_factory=set)

    @property
    def effective_delimiter(self) -> str:
        return self.delimiter if self.delimiter is not None else ("," if self.fmt == "CSV" else "|")


def parse_unload(sql: str) -> UnloadSpec:
    cur = _Cursor(tokenize(sql))
    if not cur.word("UNLOAD"):
        raise RedshiftError("ERROR: not an UNLOAD statement")
    opening = cur.next("'('")
    if not opening.is_punct("("):
        raise RedshiftError(f"ERROR: syntax error at or near \"{opening.text}\": UNLOAD needs ('select ...')")
    query = cur.next("a quoted query")
    if query.kind != STRING:
        raise RedshiftError(f"ERROR: syntax error at or near \"{query.text}\": UNLOAD's query must be a quoted string")
    if not cur.next("')'").is_punct(")") or not cur.word("TO"):
        raise RedshiftError("ERROR: syntax error: expected UNLOAD ('select ...') TO 's3://...'")
    dest = cur.next("the destination")
    if dest.kind != STRING or not unquote_string(dest.text).startswith("s3://"):
        raise RedshiftError(f"ERROR: syntax error at or near \"{dest.text}\": UNLOAD TO needs a quoted s3:// path")
    spec = UnloadSpec(query=unquote_string(query.text), destination=unquote_string(dest.text))
    authorized = False
    while cur.peek() is not None:
        authorized = _option(cur, spec) or authorized
    if not authorized:
        raise RedshiftError("ERROR: UNLOAD needs authorization: IAM_ROLE, CREDENTIALS or ACCESS_KEY_ID/SECRET_ACCESS_KEY")
    _check(spec)
    return spec


def _size(cur: _Cursor, option: str) -> int:
    cur.word("AS")
    tok = cur.next(f"a size after {option}")
    if tok.kind != NUMBER:
        raise RedshiftError(f"ERROR: syntax error at or near \"{tok.text}\": {option} needs a number")
    unit = MB * 1024 if cur.word("GB") else MB
    cur.word("MB")
    return int(float(tok.text) * unit)


def _option(cur: _Cursor, spec: UnloadSpec) -> bool:
    tok = cur.next("an option")
    if tok.kind != WORD:
        raise RedshiftError(f"ERROR: syntax error at or near \"{tok.text}\" in UNLOAD options")
    word = tok.upper
    spec.seen.add(word)
    if word == "IAM_ROLE":
        role = cur.next("a role")
        if not (role.is_word("DEFAULT") or role.kind == STRING):
            raise RedshiftError(f"ERROR: syntax error at or near \"{role.text}\": IAM_ROLE needs default or 'arn'")
        return True
    if word in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"):
        cur.string(word)
        return True
    if word in ("WITH", "CREDENTIALS"):
        if word == "WITH":
            cur.word("CREDENTIALS")
        cur.string("CREDENTIALS")
        return True
    if word == "FORMAT":
        cur.word("AS")
        return _option(cur, spec)
    if word in ("CSV", "PARQUET", "JSON"):
        spec.fmt = word
    elif word == "HEADER":
        spec.header = True
    elif word == "DELIMITER":
        spec.delimiter = cur.string(word)
    elif word == "NULL":
        spec.null_as = cur.string("NULL AS")
    elif word == "ADDQUOTES":
        spec.add_quotes = True
    elif word == "ESCAPE":
        spec.escape = True
    elif word in COMPRESSIONS:
        spec.compression = word
    elif word == "PARALLEL":
        if cur.word("OFF", "FALSE"):
            spec.parallel = False
        else:
            cur.word("ON", "TRUE")
    elif word == "MAXFILESIZE":
        spec.max_file_size = _size(cur, word)
    elif word == "ROWGROUPSIZE":
        _size(cur, word)
    elif word == "MANIFEST":
        spec.manifest = True
        spec.verbose = cur.word("VERBOSE")
    elif word == "ALLOWOVERWRITE":
        spec.allow_overwrite = True
    elif word == "CLEANPATH":
        spec.clean_path = True
    elif word == "PARTITION":
        _partition(cur, spec)
    elif word == "ENCRYPTED":
        spec.encrypted = True
        cur.word("AUTO")
    elif word == "KMS_KEY_ID":
        spec.kms_key_id = cur.string(word)
    elif word in ("REGION", "EXTENSION", "MASTER_SYMMETRIC_KEY"):
        value = cur.string(word)
        if word == "EXTENSION":
            spec.extension = value.lstrip(".")
    elif word in ("FIXEDWIDTH",):
        raise UnsupportedSql(f"UNLOAD option {word}")
    else:
        raise UnsupportedSql(f"UNLOAD option {word}")
    return False


def _partition(cur: _Cursor, spec: UnloadSpec) -> None:
    if not cur.word("BY") or not cur.next("'('").is_punct("("):
        raise RedshiftError("ERROR: syntax error: expected PARTITION BY (column, ...)")
    while True:
        col = cur.next("a column")
        if col.kind not in (WORD, QIDENT):
            raise RedshiftError(f"ERROR: syntax error at or near \"{col.text}\" in PARTITION BY")
        spec.partition_by.append(identifier(col))
        sep = cur.next("')'")
        if sep.is_punct(")"):
            break
        if not sep.is_punct(","):
            raise RedshiftError(f"ERROR: syntax error at or near \"{sep.text}\" in PARTITION BY")
    spec.partition_include = cur.word("INCLUDE")


def _check(spec: UnloadSpec) -> None:
    def conflict(a: str, b: str) -> RedshiftError:
        return RedshiftError(f"ERROR: conflicting or redundant options: {a} cannot be used with {b}")

    if spec.clean_path and spec.allow_overwrite:
        raise conflict("CLEANPATH", "ALLOWOVERWRITE")
    if spec.fmt == "PARQUET":
        for name in ("DELIMITER", "ADDQUOTES", "ESCAPE", "NULL", "HEADER", *COMPRESSIONS):
            if name in spec.seen:
                raise conflict("PARQUET", name)
    if spec.fmt == "JSON":
        for name in ("DELIMITER", "ADDQUOTES", "ESCAPE", "HEADER"):
            if name in spec.seen:
                raise conflict("JSON", name)
    if spec.fmt == "CSV" and spec.escape:
        raise conflict("CSV", "ESCAPE")
    if spec.delimiter is not None and len(spec.delimiter) != 1:
        raise RedshiftError(f"ERROR: DELIMITER must be a single character, got {spec.delimiter!r}")
    if not MIN_FILE_SIZE <= spec.max_file_size <= MAX_FILE_SIZE:
        raise RedshiftError("ERROR: MAXFILESIZE must be between 5 MB and 6.2 GB")
