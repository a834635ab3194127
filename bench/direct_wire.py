"""A direct connection against the Data API on devstack: round trips, a batch, and COPY throughput.

Starts PostgreSQL, moto (S3 + DynamoDB), the Data API emulator and the Redshift-protocol endpoint
(devstack/redshift/wire.py), then times, as a client sees it:
  1. `SELECT 1`: redshift_connector on one open connection / a new connection each time /
     boto3 redshift-data execute + describe polling;
  2. a 3-statement load batch (CREATE TEMP TABLE, COPY from moto S3, INSERT ... SELECT) through
     the loader's two adapters: DirectWarehouse.submit (synchronous, outcome in DynamoDB) and
     DataApiWarehouse.submit + describe until finished;
  3. COPY of N CSV rows over the wire against the same COPY through the Data API.
Medians and p90 (the machine may be shared). No assertions: figures only.

    .venv/bin/python bench/direct_wire.py [--reps 50] [--rows 200000]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
for _key, _value in (("AWS_ACCESS_KEY_ID", "devstack"), ("AWS_SECRET_ACCESS_KEY", "devstack"),
                     ("AWS_DEFAULT_REGION", "us-east-1")):
    os.environ.setdefault(_key, _value)  # moto accepts any credentials

import boto3  # noqa: E402
import redshift_connector  # noqa: E402

from chalicelib import resources  # noqa: E402
from chalicelib.adapters.redshift_direct import DirectWarehouse  # noqa: E402
from chalicelib.adapters.redshift_signin import Credentials, RedshiftSignIn  # noqa: E402
from chalicelib.adapters.statement_store import DynamoStatementStore  # noqa: E402
from chalicelib.adapters.warehouse import DataApiWarehouse  # noqa: E402
from chalicelib.pipelines import Warehouse  # noqa: E402
from devstack.aws import create_table  # noqa: E402
from devstack.redshift import RedshiftEmulator  # noqa: E402
from devstack.redshift.postgres import PostgresServer  # noqa: E402
from devstack.redshift.wire import RedshiftWire  # noqa: E402

PASSWORD = "bench"


class _MasterSignIn(RedshiftSignIn):
    def _fetch(self, w: Warehouse) -> Credentials:
        return Credentials("awsuser", PASSWORD, 4e9)


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def report(label: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    print(f"{label:<58} median {statistics.median(ms):8.1f} ms   p90 {p90:8.1f} ms   (n={len(ms)})")


def wait(api: Any, sid: str) -> dict[str, Any]:
    while True:
        d = api.describe_statement(Id=sid)
        if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            assert d["Status"] == "FINISHED", d.get("Error")
            return d
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    ddb = boto3.client("dynamodb", endpoint_url=moto_url, region_name="us-east-1")
    s3.create_bucket(Bucket="bench-direct")
    create_table(ddb, resources.LEDGER_TABLE, "bench-ledger")
    small = "\n".join(f"{i},name{i}" for i in range(100)) + "\n"
    s3.put_object(Bucket="bench-direct", Key="small.csv", Body=small.encode())
    big = "".join(f"{i},name{i}\n" for i in range(args.rows))
    s3.put_object(Bucket="bench-direct", Key="big.csv", Body=big.encode())
    try:
        with PostgresServer() as pg, RedshiftEmulator(pg.dsn, s3_endpoint=moto_url, namespace="bench") as emu, \
                RedshiftWire(emu, authenticate=lambda u, p: p == PASSWORD) as wire:
            rsdata = boto3.client("redshift-data", endpoint_url=emu.url, region_name="us-east-1")
            database = f"b{uuid.uuid4().hex[:8]}"
            connect = dict(host="127.0.0.1", port=wire.port, database=database, user="awsuser",
                           password=PASSWORD, ssl=False)
            wh = Warehouse(name="bench", database=database, workgroup=None, cluster="devstack", secret_arn=None,
                           db_user=None, iam_role=None, connection="direct", host="h")
            print(f"reps {args.reps}; COPY size {args.rows} rows ({len(big) / 1e6:.1f} MB)\n")

            conn = redshift_connector.connect(**connect)
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute("CREATE TABLE t (id INT, name VARCHAR(20))")
            report("SELECT 1, redshift_connector, open connection", timed(lambda: cur.execute("SELECT 1"), args.reps))

            def fresh() -> None:
                c = redshift_connector.connect(**connect)
                c.cursor().execute("SELECT 1")
                c.close()
            report("SELECT 1, redshift_connector, new connection each", timed(fresh, args.reps))
            target = {"ClusterIdentifier": "devstack", "Database": database}
            report("SELECT 1, Data API execute + describe", timed(
                lambda: wait(rsdata, rsdata.execute_statement(Sql="SELECT 1", **target)["Id"]), args.reps))

            batch = ["CREATE TEMP TABLE s (LIKE t)", "COPY s FROM 's3://bench-direct/small.csv' IAM_ROLE default CSV",
                     "INSERT INTO t SELECT * FROM s"]
            direct = DirectWarehouse(store=DynamoStatementStore("bench-ledger", api=ddb), warehouses={"bench": wh},
                                     sign_in=_MasterSignIn(), endpoint_override=wire.endpoint)
            report("3-statement load batch, DirectWarehouse.submit", timed(
                lambda: direct.submit(wh, batch, name="b", token=uuid.uuid4().hex), args.reps))
            data_api = DataApiWarehouse(api=rsdata)
            api_wh = Warehouse(name="bench", database=database, workgroup=None, cluster="devstack", secret_arn=None,
                               db_user=None, iam_role=None)
            report("3-statement load batch, Data API submit + describe", timed(
                lambda: wait(rsdata, data_api.submit(api_wh, batch, name="b", token=uuid.uuid4().hex)), args.reps))

            copy = "COPY t FROM 's3://bench-direct/big.csv' IAM_ROLE default CSV"
            reps = max(3, args.reps // 10)
            wire_ms = timed(lambda: cur.execute(copy), reps)
            api_ms = timed(lambda: wait(rsdata, rsdata.execute_statement(Sql=copy, **target)["Id"]), reps)
            for label, ms in ((f"COPY {args.rows} rows over the wire", wire_ms),
                              (f"COPY {args.rows} rows via the Data API", api_ms)):
                report(label, ms)
                print(f"{'':<58} {args.rows / (statistics.median(ms) / 1000):,.0f} rows/s")
            conn.close()
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
