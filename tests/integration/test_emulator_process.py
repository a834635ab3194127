"""The Data API emulator in a child process (devstack's option for benchmarks)."""

from __future__ import annotations

import time

import boto3
import psycopg
import pytest

from devstack.redshift.process import EmulatorProcess


def test_a_child_process_emulator_runs_statements_on_the_database_it_names(pg_server, moto_endpoint):
    emulator = EmulatorProcess(pg_server.dsn, s3_endpoint=moto_endpoint, events_endpoint=moto_endpoint,
                               region="us-east-1", namespace="rsproc", env={"AWS_ACCESS_KEY_ID": "devstack",
                                                                           "AWS_SECRET_ACCESS_KEY": "devstack"})
    try:
        rsdata = boto3.client("redshift-data", endpoint_url=emulator.url, region_name="us-east-1")
        sid = rsdata.batch_execute_statement(WorkgroupName="proc", Database="dev", Sqls=[
            "CREATE TABLE IF NOT EXISTS public.seen (n INT)", "INSERT INTO public.seen VALUES (7)"])["Id"]
        deadline = time.monotonic() + 30
        while (status := rsdata.describe_statement(Id=sid)["Status"]) not in ("FINISHED", "FAILED", "ABORTED"):
            assert time.monotonic() < deadline, "statement still running"
            time.sleep(0.05)
        assert status == "FINISHED"
        with psycopg.connect(emulator.database_dsn("workgroup:proc", "dev")) as conn:
            assert conn.execute("SELECT n FROM public.seen").fetchall() == [(7,)]
        with pytest.raises(ValueError, match="fault injection"):
            emulator.use_fault_plan(type("Plan", (), {"active": True})())
        emulator.use_fault_plan(None)  # no plan: nothing to refuse
    finally:
        emulator.stop()
    assert emulator._proc.poll() is not None  # the child is gone


def test_a_stack_refuses_the_emulator_process_with_what_needs_it_in_process_before_starting_anything():
    from devstack.faults import FaultPlan
    from devstack.stack import Devstack, StackOptions

    for options in (StackOptions(emulator_process=True, state_dir=None),  # the wire endpoint is on by default
                    StackOptions(emulator_process=True, redshift_wire=False, state_dir=None,
                                 faults=FaultPlan.parse("throttle=0.5"))):
        stack = Devstack(options)
        with pytest.raises(ValueError, match="emulator_process excludes"):
            stack.start()
        assert stack.pg is None and stack.moto is None  # nothing was left running


def test_an_emulator_makes_its_s3_and_events_clients_when_it_starts(pg_server, moto_endpoint, monkeypatch):
    """Made by the first COPY and the first event, they cost a fresh emulator process a third of a
    second in the middle of the first burst; and two COPYs starting together made two S3 clients."""
    import threading

    import botocore.session

    from devstack.redshift import RedshiftEmulator

    made: list[str] = []
    original = botocore.session.Session.create_client

    def counting(self, service_name, *args, **kwargs):
        made.append(service_name)
        return original(self, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", counting)
    with RedshiftEmulator(pg_server.dsn, s3_endpoint=moto_endpoint, events_endpoint=moto_endpoint,
                          namespace="rswarm") as running:
        assert sorted(made) == ["events", "s3"]
        clients: list[object] = []
        threads = [threading.Thread(target=lambda: clients.append(running.engine._s3_client())) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert made.count("s3") == 1 and all(c is clients[0] for c in clients)


def test_an_emulator_started_before_its_stack_sets_credentials_still_copies_and_sends_events(
        pg_server, moto_endpoint, monkeypatch):
    """Found by `make demo`: the emulator now makes its clients when it starts, and devstack sets the
    stack's credentials after starting it; COPY and every WithEvent failed with 'Unable to locate
    credentials' (the test session's own credentials had hidden it)."""
    from devstack.redshift import RedshiftEmulator

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a fresh process: no session has found credentials yet
    with RedshiftEmulator(pg_server.dsn, s3_endpoint=moto_endpoint, events_endpoint=moto_endpoint,
                          namespace="rsnocred") as running:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # what the stack sets afterwards, for its own clients
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="nocred-bucket")
        s3.put_object(Bucket="nocred-bucket", Key="rows/a.csv", Body=b"1\n2\n")
        seen: list[dict] = []
        running._events.listeners.append(seen.append)
        rsdata = boto3.client("redshift-data", endpoint_url=running.url, region_name="us-east-1")
        sid = rsdata.batch_execute_statement(WorkgroupName="nocred", Database="dev", WithEvent=True, Sqls=[
            "CREATE TABLE IF NOT EXISTS public.n (v INT)",
            "COPY public.n FROM 's3://nocred-bucket/rows/' IAM_ROLE 'arn:aws:iam::123456789012:role/R' CSV"])["Id"]
        deadline = time.monotonic() + 30
        while (desc := rsdata.describe_statement(Id=sid))["Status"] not in ("FINISHED", "FAILED", "ABORTED"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert desc["Status"] == "FINISHED", desc.get("Error")
        events = running._events._client
        assert events._request_signer._credentials is not None  # its WithEvent reaches EventBridge
