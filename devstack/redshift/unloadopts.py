"""Parse a Redshift UNLOAD statement into an `UnloadSpec`.

    UNLOAD ('select ...') TO 's3://bucket/prefix' authorization [ option ... ]

Hand-written on the lossless tokenizer (sqlglot does not parse UNLOAD at all). Invalid
combinations are refused with the option named, as Redshift does; options Redshift has but
devstack cannot honour fail with `UnsupportedSql`; words that are no option at all are a
syntax error naming the word, so a typo never passes silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devstack.redshift.contracts import RedshiftError, UnsupportedSql
from devstack.redshift.copyopts import identifier, unquote_string
from devstack.redshift.sqltokens import NUMBER, QIDENT, STRING, TRIVIA, WORD, Token, tokenize

MB = 1024 * 1024
MIN_FILE_SIZE, MAX_FILE_SIZE = 5 * MB, int(6.2 * 1024 * MB)
MIN_ROW_GROUP, MAX_ROW_GROUP = 32 * MB, 128 * MB  # Parquet ROWGROUPSIZE (default 32 MB)
FORMATS = ("CSV", "PARQUET", "JSON")
COMPRESSIONS = ("GZIP", "BZIP2", "ZSTD")
# Redshift UNLOAD options devstack refuses rather than fake (client-side encryption).
UNSUPPORTED = ("MASTER_SYMMETRIC_KEY",)
# Options that cannot go with a format (Redshift's documented restrictions).
PARQUET_CONFLICTS = ("DELIMITER", "FIXEDWIDTH", "ADDQUOTES", "ESCAPE", "NULL AS", "HEADER", *COMPRESSIONS)
JSON_CONFLICTS = ("DELIMITER", "FIXEDWIDTH", "ADDQUOTES", "ESCAPE", "HEADER")
CSV_CONFLICTS = ("FIXEDWIDTH", "ESCAPE")
FIXEDWIDTH_CONFLICTS = ("DELIMITER", "HEADER")


@dataclass(frozen=True)
class FixedWidthColumn:
    label: str
    width: int


@dataclass
class UnloadSpec:
    query: str                          # the inner query, unquoted ('' -> ')
    destination: str                    # s3://bucket/name-prefix
    fmt: str = "TEXT"                   # TEXT | CSV | JSON | PARQUET
    header: bool = False
    delimiter: str | None = None
    fixed_width: list[FixedWidthColumn] | None = None
    null_as: str | None = None
    add_quotes: bool = False
    escape: bool = False
    compression: str | None = None      # GZIP | BZIP2 | ZSTD
    parallel: bool = True
    max_file_size: int = MAX_FILE_SIZE
    row_group_size: int | None = None   # Parquet row groups of about this many bytes (uncompressed)
    manifest: bool = False
    verbose: bool = False
    allow_overwrite: bool = False
    clean_path: bool = False
    partition_by: list[str] = field(default_factory=list)
    partition_include: bool = False
    kms_key_id: str | None = None
    encrypted: bool = False
    region: str | None = None
    extension: str | None = None
    seen: list[str] = field(default_factory=list)  # option names as written, for conflict messages

    @property
    def effective_delimiter(self) -> str:
        return self.delimiter if self.delimiter is not None else ("," if self.fmt == "CSV" else "|")


class _Cursor:
    """Walks the code tokens of the statement; errors say UNLOAD, not COPY."""

    def __init__(self, tokens: list[Token]) -> None:
        self.t = [t for t in tokens if t.kind not in TRIVIA]
        while self.t and self.t[-1].text == ";":
            self.t.pop()
        self.i = 0

    def peek(self) -> Token | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def next(self, what: str) -> Token:
        tok = self.peek()
        if tok is None:
            raise RedshiftError(f"ERROR: syntax error at end of input: UNLOAD expected {what}")
        self.i += 1
        return tok

    def word(self, *words: str) -> bool:
        """Consume the next token if it is one of `words`."""
        tok = self.peek()
        if tok is not None and tok.is_word(*words):
            self.i += 1
            return True
        return False

    def string(self, option: str) -> str:
        self.word("AS")
        tok = self.next(f"a quoted value after {option}")
        if tok.kind != STRING:
            raise RedshiftError(f"ERROR: syntax error at or near \"{tok.text}\": {option} needs a quoted value")
        return unquote_string(tok.text)


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
    closing = cur.next("')'")
    if not closing.is_punct(")"):
        raise RedshiftError(f"ERROR: syntax error at or near \"{closing.text}\": expected ')' after UNLOAD's query")
    if not cur.word("TO"):
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
    check_query(spec.query)
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


def _once(spec: UnloadSpec, name: str, group: tuple[str, ...] = ()) -> None:
    """Record an option; a repeat (or a second member of `group`, e.g. two formats) conflicts."""
    for other in (group or (name,)):
        if other in spec.seen:
            raise conflict(other, name) if other != name else RedshiftError(
                f"ERROR: conflicting or redundant options: {name} given twice")
    spec.seen.append(name)


def _option(cur: _Cursor, spec: UnloadSpec) -> bool:
    """Consume one option; True when it was an authorization."""
    tok = cur.next("an option")
    if tok.kind != WORD:
        raise RedshiftError(f"ERROR: syntax error at or near \"{tok.text}\" in UNLOAD options")
    word = tok.upper
    if word == "IAM_ROLE":
        role = cur.next("a role")
        if not (role.is_word("DEFAULT") or role.kind == STRING):
            raise RedshiftError(f"ERROR: syntax error at or near \"{role.text}\": IAM_ROLE needs default or 'arn'")
        return True
    if word in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"):
        cur.string(word)  # credentials are not checked locally
        return True
    if word in ("WITH", "CREDENTIALS"):
        if word == "WITH" and not cur.word("CREDENTIALS"):
            raise RedshiftError("ERROR: syntax error at or near \"WITH\": expected WITH CREDENTIALS")
        if "master_symmetric_key" in cur.string("CREDENTIALS").lower():
            raise UnsupportedSql("UNLOAD option MASTER_SYMMETRIC_KEY", "client-side encryption")
        return True
    if word == "FORMAT":
        cur.word("AS")
        fmt = cur.next("a format")
        if not fmt.is_word(*FORMATS):
            raise RedshiftError(f"ERROR: syntax error at or near \"{fmt.text}\": FORMAT needs CSV, JSON or PARQUET")
        cur.i -= 1
        return _option(cur, spec)
    if word in FORMATS:
        _once(spec, word, FORMATS)
        spec.fmt = word
    elif word in COMPRESSIONS:
        _once(spec, word, COMPRESSIONS)
        spec.compression = word
    elif word == "NULL":
        _once(spec, "NULL AS")
        spec.null_as = cur.string("NULL AS")
    elif word == "PARTITION":
        _once(spec, "PARTITION BY")
        _partition(cur, spec)
    else:
        _once(spec, word)
        _plain_option(cur, spec, word)
    return False


def _plain_option(cur: _Cursor, spec: UnloadSpec, word: str) -> None:
    if word == "HEADER":
        spec.header = True
    elif word == "DELIMITER":
        spec.delimiter = cur.string(word)
    elif word == "FIXEDWIDTH":
        spec.fixed_width = parse_fixed_width(cur.string(word))
    elif word == "ADDQUOTES":
        spec.add_quotes = True
    elif word == "ESCAPE":
        spec.escape = True
    elif word == "PARALLEL":
        if cur.word("OFF", "FALSE"):
            spec.parallel = False
        else:
            cur.word("ON", "TRUE")
    elif word == "MAXFILESIZE":
        spec.max_file_size = _size(cur, word)
    elif word == "ROWGROUPSIZE":
        spec.row_group_size = _size(cur, word)
    elif word == "MANIFEST":
        spec.manifest = True
        spec.verbose = cur.word("VERBOSE")
    elif word == "ALLOWOVERWRITE":
        spec.allow_overwrite = True
    elif word == "CLEANPATH":
        spec.clean_path = True
    elif word == "ENCRYPTED":
        spec.encrypted = True
        cur.word("AUTO")
    elif word == "KMS_KEY_ID":
        spec.kms_key_id = cur.string(word)
    elif word == "REGION":
        spec.region = cur.string(word)
    elif word == "EXTENSION":
        spec.extension = cur.string(word).lstrip(".") or None
    elif word in UNSUPPORTED:
        raise UnsupportedSql(f"UNLOAD option {word}", "client-side encryption")
    else:
        raise RedshiftError(f"ERROR: syntax error at or near \"{word}\": not an UNLOAD option")


def parse_fixed_width(text: str) -> list[FixedWidthColumn]:
    """'label:width,label:width,...' (labels are free text, widths positive integers)."""
    out: list[FixedWidthColumn] = []
    for item in text.split(","):
        label, sep, width = item.strip().rpartition(":")
        if not sep or not width.strip().isdigit() or int(width) <= 0:
            raise RedshiftError(f"ERROR: invalid FIXEDWIDTH specification {text!r}: expected 'label:width,...'")
        out.append(FixedWidthColumn(label.strip(), int(width)))
    return out


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


def conflict(a: str, b: str) -> RedshiftError:
    return RedshiftError(f"ERROR: conflicting or redundant options: {a} cannot be used with {b}")


def _check(spec: UnloadSpec) -> None:
    seen = set(spec.seen)
    if spec.clean_path and spec.allow_overwrite:
        raise conflict("CLEANPATH", "ALLOWOVERWRITE")
    for fmt, banned in (("PARQUET", PARQUET_CONFLICTS), ("JSON", JSON_CONFLICTS), ("CSV", CSV_CONFLICTS)):
        if spec.fmt == fmt:
            for name in banned:
                if name in seen:
                    raise conflict(fmt, name)
    if spec.fixed_width is not None:
        for name in FIXEDWIDTH_CONFLICTS:
            if name in seen:
                raise conflict("FIXEDWIDTH", name)
    if spec.delimiter is not None and len(spec.delimiter) != 1:
        raise RedshiftError(f"ERROR: DELIMITER must be a single character, got {spec.delimiter!r}")
    if spec.delimiter is not None and spec.null_as is not None and spec.delimiter in spec.null_as:
        raise RedshiftError("ERROR: the DELIMITER must not appear in the NULL AS string")
    if not MIN_FILE_SIZE <= spec.max_file_size <= MAX_FILE_SIZE:
        raise RedshiftError("ERROR: MAXFILESIZE must be between 5 MB and 6.2 GB")
    if spec.row_group_size is not None:
        if spec.fmt != "PARQUET":
            raise RedshiftError("ERROR: ROWGROUPSIZE can only be used with FORMAT PARQUET")
        if not MIN_ROW_GROUP <= spec.row_group_size <= MAX_ROW_GROUP:
            raise RedshiftError("ERROR: ROWGROUPSIZE must be between 32 MB and 128 MB")
    if len(set(spec.partition_by)) != len(spec.partition_by):
        raise RedshiftError("ERROR: PARTITION BY names a column twice")


def check_query(query: str) -> None:
    """Redshift refuses LIMIT (and TOP) in UNLOAD's outer SELECT; a subquery may use them.
    Refusing here too keeps a statement that would fail on Redshift from passing locally."""
    depth = 0
    code = [t for t in tokenize(query) if t.kind not in TRIVIA]
    for i, tok in enumerate(code):
        if tok.is_punct("("):
            depth += 1
        elif tok.is_punct(")"):
            depth -= 1
        elif depth == 0 and tok.is_word("LIMIT"):
            raise RedshiftError("ERROR: Limit clause is not supported in UNLOAD: "
                                "use a subquery, SELECT * FROM (SELECT ... LIMIT n)")
        elif depth == 0 and tok.is_word("TOP") and i > 0 and code[i - 1].is_word("SELECT", "DISTINCT", "ALL"):
            raise RedshiftError("ERROR: TOP is not supported in UNLOAD: use a subquery, SELECT * FROM (SELECT TOP n ...)")
