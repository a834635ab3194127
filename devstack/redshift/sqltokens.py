"""A lossless tokenizer for Redshift SQL, and helpers to walk and edit token lists.

`tokenize(sql)` cuts text into tokens whose texts concatenate back to `sql` exactly, so
rewrite rules can edit code tokens and leave everything else (strings, quoted identifiers,
comments, dollar-quoted bodies, whitespace) byte for byte as written.

String literals follow Redshift (and our PostgreSQL, which runs with
standard_conforming_strings=off): inside '...' both `''` and a backslash escape the next
character, so `'it''s'` and `'a\\'b'` are single literals. E'...' works the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Kinds of tokens. CODE_KINDS are the ones rewrite rules look at.
WS, COMMENT, STRING, QIDENT, DOLLAR, WORD, NUMBER, PARAM, OP, PUNCT = (
    "ws", "comment", "string", "qident", "dollar", "word", "number", "param", "op", "punct")
TRIVIA = (WS, COMMENT)

_WS = re.compile(r"\s+")
_WORD = re.compile(r"[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_PARAM = re.compile(r"\$\d+")
# String prefixes: E'..' (escapes), B'..'/X'..' (bit strings), N'..' (national), U&'..'.
_STRING_PREFIX = re.compile(r"(?:[eEbBxXnN]|[uU]&)'")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str

    @property
    def upper(self) -> str:
        """Upper-cased text of a word (keywords compare this); other kinds: the text."""
        return self.text.upper() if self.kind == WORD else self.text

    def is_word(self, *words: str) -> bool:
        return self.kind == WORD and (not words or self.text.upper() in words)

    def is_punct(self, char: str) -> bool:
        return self.kind == PUNCT and self.text == char


def _end_of_string(sql: str, i: int) -> int:
    """Index just past the literal whose opening quote is at sql[i]."""
    n = len(sql)
    i += 1
    while i < n:
        c = sql[i]
        if c == "\\":
            i += 2
        elif c == "'":
            if i + 1 < n and sql[i + 1] == "'":
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n  # unterminated: PostgreSQL will report it


def _end_of_block_comment(sql: str, i: int) -> int:
    depth, i, n = 1, i + 2, len(sql)  # PostgreSQL block comments nest
    while i < n and depth:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def tokenize(sql: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            m = _WS.match(sql, i)
            assert m
            j = m.end()
            kind = WS
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j == -1 else j  # the newline stays whitespace
            kind = COMMENT
        elif sql.startswith("/*", i):
            j, kind = _end_of_block_comment(sql, i), COMMENT
        elif c == "'":
            j, kind = _end_of_string(sql, i), STRING
        elif (m := _STRING_PREFIX.match(sql, i)) and (i == 0 or not _is_ident_char(sql[i - 1])):
            j, kind = _end_of_string(sql, m.end() - 1), STRING
        elif c == '"':
            j = i + 1
            while True:
                k = sql.find('"', j)
                if k == -1:
                    j = n
                    break
                if sql.startswith('""', k):
                    j = k + 2
                    continue
                j = k + 1
                break
            kind = QIDENT
        elif c == "$" and (m := _PARAM.match(sql, i)):
            j, kind = m.end(), PARAM
        elif c == "$" and (m := _DOLLAR_TAG.match(sql, i)):
            k = sql.find(m.group(0), m.end())
            j = n if k == -1 else k + len(m.group(0))
            kind = DOLLAR
        elif m := _WORD.match(sql, i):
            j, kind = m.end(), WORD
        elif c.isdigit() or (c == "." and i + 1 < n and sql[i + 1].isdigit()):
            m = _NUMBER.match(sql, i)
            assert m
            j, kind = m.end(), NUMBER
        elif c in "(),;.[]":
            j, kind = i + 1, PUNCT
        elif sql.startswith("::", i):
            j, kind = i + 2, OP
        else:
            j, kind = i + 1, OP  # one operator character at a time: enough for the rules
        out.append(Token(kind, sql[i:j]))
        i = j
    return out


def _is_ident_char(c: str) -> bool:
    return c.isalnum() or c in "_$"


def join(tokens: list[Token]) -> str:
    return "".join(t.text for t in tokens)


def code_indexes(tokens: list[Token]) -> list[int]:
    """Indexes of the tokens that are not whitespace or comments."""
    return [i for i, t in enumerate(tokens) if t.kind not in TRIVIA]


def matching_paren(tokens: list[Token], i: int) -> int:
    """Index of the `)` closing the `(` at tokens[i]; len(tokens) when unbalanced."""
    depth = 0
    for j in range(i, len(tokens)):
        t = tokens[j]
        if t.kind == PUNCT:
            if t.text in "([":
                depth += 1
            elif t.text in ")]":
                depth -= 1
                if depth == 0:
                    return j
    return len(tokens)


def split_args(tokens: list[Token], open_i: int, close_i: int) -> list[str]:
    """Top-level comma-separated texts between a `(` and its `)`, each stripped."""
    args: list[str] = []
    depth, start = 0, open_i + 1
    for j in range(open_i + 1, close_i):
        t = tokens[j]
        if t.kind == PUNCT:
            if t.text in "([":
                depth += 1
            elif t.text in ")]":
                depth -= 1
            elif t.text == "," and depth == 0:
                args.append(join(tokens[start:j]).strip())
                start = j + 1
    last = join(tokens[start:close_i]).strip()
    if last or args:
        args.append(last)
    return args


def split_top_level(tokens: list[Token], separator: str = ";") -> list[list[Token]]:
    """Token lists between top-level separators (a PUNCT such as `;` or `,`)."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for t in tokens:
        if t.kind == PUNCT and t.text in "([":
            depth += 1
        elif t.kind == PUNCT and t.text in ")]":
            depth -= 1
        if depth == 0 and t.kind == PUNCT and t.text == separator:
            parts.append([])
        else:
            parts[-1].append(t)
    return parts
