"""Schema drift: CSV headers read from (compressed) prefixes and compared with the table."""

from __future__ import annotations

import bz2
import gzip

import pytest

from chalicelib.drift import DriftError, compare, header_columns, plan_columns
from chalicelib.jobs import FileRef, JobStatus
from chalicelib.pipelines import parse_catalog
from chalicelib.service import Service
from chalicelib.settings import Settings
from tests.unit.fakes import FakeLedger, FakeNotifier, FakeQueue, FakeStorage, FakeWarehouse, SteppingClock

CSV = b'\xef\xbb\xbfID,"Name", amount\n1,a,2\n'


@pytest.mark.parametrize(("data", "compression"), [
    (CSV, None), (gzip.compress(CSV), "GZIP"), (bz2.compress(CSV), "BZIP2"),
    (gzip.compress(CSV * 50_000)[:65536], "GZIP"),  # only a prefix of a big gzip file is read
])
def test_the_header_is_read_from_a_prefix_plain_or_compressed(data: bytes, compression: str | None) -> None:
    assert header_columns(data, compression=compression) == ["id", "name", "amount"]


def test_unreadable_headers_are_none_not_a_guess() -> None:
    assert header_columns(b"x" * 65536, compression=None) is None          # no line end in 64 KiB
    assert header_columns(b"not gzip", compression="GZIP") is None
    assert header_columns(CSV, compression="ZSTD") is None                  # no decoder in the Lambda
    assert header_columns(b"a|b\n", compression=None, delimiter="|") == ["a", "b"]


def files(*names: str) -> list[FileRef]:
    return [FileRef("landing", n, "e", 10) for n in names]


def heads(mapping: dict[str, bytes]):
    return lambda f: mapping[f.key]


def plan(mapping: dict[str, bytes], expected: list[str], allow: bool = False):
    return plan_columns(files(*mapping), heads(mapping), table="s.t", expected=expected, compression=None,
                        delimiter=",", quote='"', allow_new_columns=allow)


def test_same_columns_in_another_order_load_by_name() -> None:
    assert plan({"a.csv": b"b,a\n"}, ["a", "b"]) == (["b", "a"], [])


def test_new_columns_are_added_only_when_allowed() -> None:
    assert plan({"a.csv": b"a,b,c\n"}, ["a", "b"], allow=True) == (["a", "b", "c"], ["c"])
    with pytest.raises(DriftError, match=r"only in the file: c \(set allow_new_columns = true to add them\)"):
        plan({"a.csv": b"a,b,c\n"}, ["a", "b"])


def test_missing_columns_fail_naming_them_even_when_new_ones_are_allowed() -> None:
    with pytest.raises(DriftError, match="the header of s3://landing/a.csv does not match s.t: only in the file: x; "
                                         "only in the table: b"):
        plan({"a.csv": b"a,x\n"}, ["a", "b"], allow=True)


def test_files_of_one_load_must_share_a_header() -> None:
    with pytest.raises(DriftError, match=r"different headers: s3://landing/a.csv has \(a, b\), "
                                         r"s3://landing/b.csv has \(a, c\)"):
        plan({"a.csv": b"a,b\n", "b.csv": b"a,c\n"}, ["a", "b"])


def test_header_names_must_be_identifiers() -> None:
    with pytest.raises(DriftError, match="not plain SQL identifiers: 'a; drop table x'"):
        plan({"a.csv": b'"a; drop table x",b\n'}, ["a", "b"])


def test_compare() -> None:
    assert compare(["a", "c"], ["A", "b"]).only_file == ("c",)
    assert compare(["a", "c"], ["A", "b"]).only_table == ("b",)
    assert not compare(["b", "a"], ["a", "b"]).any


CATALOG = """
[warehouses.main]
workgroup = "analytics"
database = "dev"
iam_role = "arn:aws:iam::123456789012:role/RedshiftS3"

[[loads]]
name = "people"
warehouse = "main"
bucket = "landing"
prefix = "people/"
table = "crm.people"
format = "csv"
options = ["IGNOREHEADER 1", "GZIP"]
mode = "upsert"
keys = ["id"]
allow_new_columns = true
batch = { max_files = 2, max_seconds = 10 }
"""


def test_a_load_adds_a_new_header_column_before_copying_by_name() -> None:
    catalog = parse_catalog(CATALOG, "pipelines.toml")
    storage, warehouse = FakeStorage(), FakeWarehouse()
    warehouse.columns["crm.people"] = ["id", "name"]
    service = Service(catalog=catalog, settings=Settings.from_env({}), clock=SteppingClock(), ledger=FakeLedger(),
                      queue=FakeQueue(), warehouse=warehouse, storage=storage, notifier=FakeNotifier())
    from tests.unit.test_service import file_event

    for key in ("people/1.csv.gz", "people/2.csv.gz"):
        storage.blobs[("landing", key)] = gzip.compress(b"name,id,email\nann,1,a@x\n")
    [job] = service.files_landed([file_event("people/1.csv.gz"), file_event("people/2.csv.gz")]).jobs
    service.run_job_message(job.id, receipt="r", receive_count=1)
    sqls = warehouse.submitted[service.ledger.get_job(job.id).statement_id][1]
    assert sqls[1] == 'ALTER TABLE "crm"."people" ADD COLUMN "email" VARCHAR(65535)'
    assert '("name", "id", "email") FROM' in sqls[4]  # the COPY into staging, by the header's names
    assert any('INSERT INTO "crm"."people" ("id", "name", "email")' in s for s in sqls)


def test_a_load_whose_header_drifted_fails_before_submitting_with_the_columns() -> None:
    catalog = parse_catalog(CATALOG.replace("allow_new_columns = true", ""), "pipelines.toml")
    storage, warehouse = FakeStorage(), FakeWarehouse()
    warehouse.columns["crm.people"] = ["id", "name"]
    service = Service(catalog=catalog, settings=Settings.from_env({}), clock=SteppingClock(), ledger=FakeLedger(),
                      queue=FakeQueue(), warehouse=warehouse, storage=storage, notifier=FakeNotifier())
    from tests.unit.test_service import file_event

    storage.blobs[("landing", "people/1.csv.gz")] = gzip.compress(b"id,full_name\n1,ann\n")
    service.files_landed([file_event("people/1.csv.gz")])
    job = service.seal("people")
    service.run_job_message(job.id, receipt="r", receive_count=1)
    failed = service.ledger.get_job(job.id)
    assert failed.status is JobStatus.FAILED and not warehouse.submitted
    assert failed.error == ("the header of s3://landing/people/1.csv.gz does not match crm.people: "
                            "only in the file: full_name; only in the table: name")
