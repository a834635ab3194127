"""Parse a Redshift COPY statement into a `CopySpec`.

Hand-written on the rewriter's tokenizer (sqlglot pairs COPY's flag options up wrongly,
see the reference notes). The grammar:

    COPY table [ (col, ...) ] FROM 's3://...' authorization [ [FORMAT] [AS] format ] [ option ... ]

Anything the emulator cannot do faithfully (ORC, AVRO, FIXEDWIDTH, LZOP, SSH/DynamoDB
sources, ...) fails with `UnsupportedSql` naming it, never silently loads something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devstack.redshift.contracts import RedshiftError, UnsupportedSql
from devstack.redshift.sqltokens import NUMBER, QIDENT, STRING, TRIVIA, WORD, Token, tokenize

FORMATS = ("CSV", "JSON", "PARQUET", "TEXT")
UNSUPPORTED_FORMATS = ("AVRO", "ORC", "SHAPEFILE", "FIXEDWIDTH")
COMPRESSIONS = ("GZIP", "BZIP2", "ZSTD")
FLAGS = ("EMPTYASNULL", "BLANKSASNULL", "TRUNCATECOLUMNS", "ACCEPTANYDATE", "ESCAPE", "REMOVEQUOTES",
         "FILLRECORD", "IGNOREBLANKLINES", "TRIMBLANKS", "EXPLICIT_IDS", "ROUNDEC", "IGNOREALLERRORS",
         "NOLOAD", "MANIFEST")
# Options that only tune Redshift's planner; accepted and ignored, with their optional argument.
TUNING = {"COMPUPDATE": ("ON", "OFF", "TRUE", "FALSE", "PRESET"), "STATUPDATE": ("ON", "OFF", "TRUE", "FALSE")}
STRING_ARGS = ("DELIMITER", "DATEFORMAT", "TIMEFORMAT", "REGION", "QUOTE", "ENCODING")
NUMBER_ARGS = ("IGNOREHEADER", "MAXERROR", "COMPROWS")
ENCODINGS = {"UTF8": "utf-8", "UTF16": "utf-16", "UTF16LE": "utf-16-le", "UTF16BE": "utf-16-be"}
MAX_MAXERROR = 100_000


@dataclass
class CopySpec:
    table: str                       # as written (quoted parts kept), e.g. sales."Orders"
    columns: list[str] | None        # folded/unquoted names, or None for all columns
    source: str                      # s3://bucket/key-or-prefix
    fmt: str = "TEXT"
    json_paths: str | None = None    # 'auto', 'auto ignorecase', or an s3:// jsonpaths file
    compression: str | None = None
    delimiter: str | None = None
    quote: str = '"'
    null_as: str | None = None
    date_format: str | None = None
    time_format: str | None = None
    ignore_header: int = 0
    max_error: int = 0
    accept_inv_chars: str | None = None  # replacement character when ACCEPTINVCHARS is on
    encoding: str = "utf-8"
    flags: set[str] = field(default_factory=set)

    def has(self, flag: str) -> bool:
        return flag in self.flags

    @property
    def effective_delimiter(self) -> str:
        return self.delimiter if self.delimiter is not None else ("," if self.fmt == "CSV" else "|")


def unquote_string(text: str) -> str:
    """The value of a '...' literal: '' and backslash escapes (\\t, \\n, \\ddd octal, \\x)."""
    body = text[1:-1] if not text[:1] in "eE" else text[2:-1]
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == "'" and i + 1 < n and body[i + 1] == "'":
            out.append("'")
            i += 2
        elif c == "\\" and i + 1 < n:
            nxt = body[i + 1]
            if nxt in "01234567":
                j = i + 1
                while j < n and j < i + 4 and body[j] in "01234567":
                    j += 1
                out.append(chr(int(body[i + 1:j], 8)))
                i = j
                continue
            out.append({"t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f"}.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def identifier(token: Token) -> str:
    """A column name as PostgreSQL stores it: unquoted words fold to lower case."""
    if token.kind == QIDENT:
        return token.text[1:-1].replace('""', '"')
    return token.text.lower()


class _Cursor:
    def __init__(self, tokens: list[Token]) -> None:
        self.t = [t for t in tokens if t.kind not in TRIVIA and t.text != ";"]
        self.i = 0

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.t[j] if j < len(self.t) else None

    def next(self, what: str) -> Token:
        tok = self.peek()
        if tok is None:
            raise RedshiftError(f"ERROR: syntax error at end of input: COPY expected {what}")
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

    def number(self, option: str) -> int:
        self.word("AS")
        tok = self.next(f"a number after {option}")
        if tok.kind != NUMBER or not tok.text.isdigit():
            raise RedshiftError(f"ERROR: syntax error at or near \"{tok.text}\": {option} needs a whole number")
        return int(tok.text)


def parse_copy(sql: str) -> CopySpec:
    cur = _Cursor(tokenize(sql))
    if not cur.word("COPY"):
        raise RedshiftError("ERROR: not a COPY statement")
    table = _table_name(cur)
    columns = _column_list(cur)
    if not cur.word("FROM"):
        raise RedshiftError(f"ERROR: syntax error at or near \"{(cur.peek() or Token(WORD, '')).text}\": expected FROM")
    src = cur.next("the data source")
    if src.kind != STRING:
        raise RedshiftError(f"ERROR: syntax error at or near \"{src.text}\": COPY FROM needs a quoted s3:// path")
    source = unquote_string(src.text)
    if not source.startswith("s3://"):
        kind = source.split("://", 1)[0] if "://" in source else source
        raise UnsupportedSql(f"COPY from {kind!r}", "devstack loads only from s3:// paths")
    spec = CopySpec(table=table, columns=columns, source=source)
    authorized = False
    while (tok := cur.peek()) is not None:
        authorized = _option(cur, spec) or authorized
    if not authorized:
        raise RedshiftError("ERROR: COPY needs authorization: IAM_ROLE, CREDENTIALS or ACCESS_KEY_ID/SECRET_ACCESS_KEY")
    _check_combinations(spec)
    return spec


def _table_name(cur: _Cursor) -> str:
    parts = []
    while True:
        tok = cur.next("a table name")
        if tok.kind not in (WORD, QIDENT):
            raise RedshiftError(f"ERROR: syntax error at or near \"{tok.text}\": expected a table name")
        parts.append(tok.text)
        nxt = cur.peek()
        if nxt is not None and nxt.text == ".":
            cur.i += 1
            continue
        return ".".join(parts)


def _column_list(cur: _Cursor) -> list[str] | None:
    tok = cur.peek()
    if tok is None or not tok.is_punct("("):
        return None
    cur.i += 1
    columns = []
    while True:
        col = cur.next("a column name")
        if col.kind not in (WORD, QIDENT):
            raise RedshiftError(f"ERROR: syntax error at or near \"{col.text}\" in the COPY column list")
        columns.append(identifier(col))
        sep = cur.next("')'")
        if sep.is_punct(")"):
            return columns
        if not sep.is_punct(","):
            raise RedshiftError(f"ERROR: syntax error at or near \"{sep.text}\" in the COPY column list")


def _option(cur: _Cursor, spec: CopySpec) -> bool:
    """Consume one option; True when it was an authorization clause."""
    tok = cur.next("an option")
    if tok.kind != WORD:
        raise RedshiftError(f"ERROR: syntax error at or near \"{tok.text}\" in COPY options")
    word = tok.upper
    if word == "IAM_ROLE":
        role = cur.next("a role after IAM_ROLE")
        if not (role.is_word("DEFAULT") or role.kind == STRING):
            raise RedshiftError(f"ERROR: syntax error at or near \"{role.text}\": IAM_ROLE needs default or 'arn'")
        return True
    if word in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN", "MASTER_SYMMETRIC_KEY"):
        cur.string(word)
        return True
    if word in ("WITH", "CREDENTIALS"):
        if word == "WITH" and not cur.word("CREDENTIALS"):
            raise RedshiftError("ERROR: syntax error at or near \"WITH\" in COPY options")
        cur.string("CREDENTIALS")
        return True
    if word in ("FORMAT", "AS") and (nxt := cur.peek()) is not None and nxt.kind == WORD:
        return _option(cur, spec)  # FORMAT [AS] CSV: noise words
    if word in UNSUPPORTED_FORMATS or word in ("LZOP", "SSH", "ENCRYPTED", "READRATIO"):
        raise UnsupportedSql(f"COPY option {word}")
    if word in FORMATS:
        spec.fmt = word
        if word == "CSV" and cur.word("QUOTE"):
            spec.quote = cur.string("QUOTE")
        elif word == "JSON":
            spec.json_paths = cur.string("JSON")
            if spec.json_paths.lower() not in ("auto", "auto ignorecase") and not spec.json_paths.startswith("s3://"):
                raise UnsupportedSql(f"JSON '{spec.json_paths}'", "use 'auto', 'auto ignorecase' or an s3:// jsonpaths file")
        return False
    if word in COMPRESSIONS:
        spec.compression = word
    elif word == "NULL":
        cur.word("AS")
        spec.null_as = cur.string("NULL AS")
    elif word == "ACCEPTINVCHARS":
        spec.flags.add(word)
        nxt = cur.peek()
        spec.accept_inv_chars = "?"
        if nxt is not None and (nxt.kind == STRING or (nxt.is_word("AS"))):
            spec.accept_inv_chars = cur.string(word)[:1] or "?"
    elif word in STRING_ARGS:
        _string_option(cur, spec, word)
    elif word in NUMBER_ARGS:
        value = cur.number(word)
        if word == "IGNOREHEADER":
            spec.ignore_header = value
        elif word == "MAXERROR":
            spec.max_error = min(value, MAX_MAXERROR)
    elif word in TUNING:
        cur.word(*TUNING[word])
    elif word in FLAGS:
        spec.flags.add(word)
    else:
        raise UnsupportedSql(f"COPY option {word}")
    return False


def _string_option(cur: _Cursor, spec: CopySpec, word: str) -> None:
    if word == "ENCODING":
        cur.word("AS")
        tok = cur.next("an encoding")
        name = unquote_string(tok.text) if tok.kind == STRING else tok.text
        if name.upper() not in ENCODINGS:
            raise RedshiftError(f"ERROR: invalid ENCODING {name!r}; expected one of {', '.join(ENCODINGS)}")
        spec.encoding = ENCODINGS[name.upper()]
        return
    value = cur.string(word)
    if word == "DELIMITER":
        if len(value) != 1:
            raise RedshiftError(f"ERROR: DELIMITER must be a single character, got {value!r}")
        spec.delimiter = value
    elif word == "QUOTE":
        spec.quote = value
    elif word == "DATEFORMAT":
        spec.date_format = value
    elif word == "TIMEFORMAT":
        spec.time_format = value
    # REGION: the local S3 has one region.


def _check_combinations(spec: CopySpec) -> None:
    def conflict(a: str, b: str) -> RedshiftError:
        return RedshiftError(f"ERROR: conflicting or redundant options: {a} cannot be used with {b}")

    if spec.fmt == "CSV":
        for flag in ("ESCAPE", "REMOVEQUOTES"):
            if spec.has(flag):
                raise conflict("CSV", flag)
        if len(spec.quote) != 1:
            raise RedshiftError(f"ERROR: QUOTE must be a single character, got {spec.quote!r}")
    if spec.fmt in ("JSON", "PARQUET"):
        for name, on in (("DELIMITER", spec.delimiter is not None), ("IGNOREHEADER", spec.ignore_header > 0),
                         ("REMOVEQUOTES", spec.has("REMOVEQUOTES")), ("FILLRECORD", spec.has("FILLRECORD"))):
            if on:
                raise conflict(spec.fmt, name)
    if spec.fmt == "PARQUET" and spec.compression:
        raise conflict("PARQUET", spec.compression)
    if spec.has("IGNOREALLERRORS") and spec.max_error:
        raise conflict("IGNOREALLERRORS", "MAXERROR")
    if spec.has("IGNOREALLERRORS"):
        spec.max_error = MAX_MAXERROR
    if spec.delimiter is not None and spec.fmt == "CSV" and spec.delimiter == spec.quote:
        raise conflict("DELIMITER", "QUOTE (same character)")
