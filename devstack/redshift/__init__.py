"""Local Redshift stand-in: a Data API emulator on PostgreSQL (see server.py).

`RedshiftEmulator` is imported lazily so that importing a sibling module (for
example `devstack.redshift.contracts` from the rewriter or COPY code) does not
pull in the whole server and create import cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack.redshift.server import RedshiftEmulator

__all__ = ["RedshiftEmulator"]


def __getattr__(name: str) -> Any:
    if name == "RedshiftEmulator":
        from devstack.redshift.server import RedshiftEmulator

        return RedshiftEmulator
    raise AttributeError(name)
