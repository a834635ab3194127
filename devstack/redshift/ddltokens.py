"""Code-token navigation for the DDL readers (ddlparse.py, ddlrefs.py): positions of the
non-whitespace tokens of one statement, original text of token ranges, identifier folding."""

from __future__ import annotations

from dataclasses import dataclass

from devstack.redshift.sqltokens import PUNCT, QIDENT, TRIVIA, WORD, Token, join, tokenize


@dataclass(frozen=True)
class Name:
    """A possibly schema-qualified name, folded like Redshift folds identifiers."""

    schema: str | None
    name: str

    @property
    def text(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


class CodeTokens:
    """The code tokens of one statement, with positions into the full token list."""

    def __init__(self, sql: str) -> None:
        self.tokens = tokenize(sql)
        self.pos = [i for i, t in enumerate(self.tokens) if t.kind not in TRIVIA]
        if self.pos and self.tokens[self.pos[-1]].is_punct(";"):
            self.pos.pop()

    def __len__(self) -> int:
        return len(self.pos)

    def tok(self, k: int) -> Token | None:
        return self.tokens[self.pos[k]] if 0 <= k < len(self.pos) else None

    def word(self, k: int) -> str:
        t = self.tok(k)
        return t.text.upper() if t is not None and t.kind == WORD else ""

    def punct(self, k: int, char: str) -> bool:
        t = self.tok(k)
        return t is not None and t.is_punct(char)

    def text(self, a: int, b: int) -> str:
        """Original text of code tokens a..b-1 (with the whitespace and comments between them)."""
        if a >= b or a >= len(self.pos):
            return ""
        return join(self.tokens[self.pos[a]:self.pos[min(b, len(self.pos)) - 1] + 1])

    def close(self, k: int) -> int:
        """Code index of the `)` matching the `(` at k (len when unbalanced)."""
        depth = 0
        for j in range(k, len(self.pos)):
            t = self.tok(j)
            if t is not None and t.kind == PUNCT and t.text in "([":
                depth += 1
            elif t is not None and t.kind == PUNCT and t.text in ")]":
                depth -= 1
                if depth == 0:
                    return j
        return len(self.pos)

    def split(self, a: int, b: int) -> list[tuple[int, int]]:
        """(start, end) code ranges between top-level commas in a..b-1."""
        out, depth, start = [], 0, a
        for j in range(a, b):
            t = self.tok(j)
            if t is not None and t.kind == PUNCT:
                if t.text in "([":
                    depth += 1
                elif t.text in ")]":
                    depth -= 1
                elif t.text == "," and depth == 0:
                    out.append((start, j))
                    start = j + 1
        if start < b:
            out.append((start, b))
        return out


def ident(token: Token | None) -> str | None:
    """An identifier token as Redshift folds it (unquoted → lower case), else None."""
    if token is None:
        return None
    if token.kind == WORD:
        return token.text.lower()
    if token.kind == QIDENT:
        return token.text[1:-1].replace('""', '"')
    return None


def qualified_name(c: CodeTokens, k: int) -> tuple[Name | None, int]:
    """The [db.]schema.name starting at code index k, and the index after it."""
    parts: list[str] = []
    while True:
        part = ident(c.tok(k))
        if part is None:
            return None, k
        parts.append(part)
        k += 1
        if not c.punct(k, "."):
            break
        k += 1
    return Name(parts[-2] if len(parts) > 1 else None, parts[-1]), k
