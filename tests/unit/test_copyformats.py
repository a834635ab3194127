"""Parquet values as the careful COPY path reads them (devstack/redshift/copyformats.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from devstack.redshift.copyformats import parquet_field


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("0E-7"), "0.0000000"),              # str() gave '0E-7': a zero failed to load as DECIMAL(x,7)
    (Decimal("1E-7"), "0.0000001"),
    (Decimal("-12345.678901234"), "-12345.678901234"),
    (Decimal("1.50"), "1.50"),
])
def test_decimals_are_written_without_exponents(value: Decimal, text: str) -> None:
    assert parquet_field(value) == text
