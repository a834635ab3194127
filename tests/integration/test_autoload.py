"""Files put into (moto) S3 end up as rows in (emulated) Redshift, through every handler.

Nothing is mocked: S3 notifications → landing queue → router → ledger → jobs FIFO →
worker → Data API emulator on PostgreSQL → completion event → completion handler.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import time

from chalicelib.jobs import JobStatus


def csv_text(header: list[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def test_files_in_one_burst_load_in_one_copy_then_post_load_runs(env):
    # A burst is files whose events are waiting together: hold delivery while they land (on a CI
    # machine busy with other work, five puts one after another outlasted the 3 s batch window).
    env.stack.pump.paused.set()
    time.sleep(1.5)  # receives already waiting (1 s long polls) end first
    try:
        for i in range(5):
            env.put(f"append/day1/part-{i}.csv",
                    csv_text(["id", "name", "amount"], [[i * 10 + j, f"n{j}", "1.50"] for j in range(10)]))
    finally:
        env.stack.pump.paused.clear()
    (job,) = env.wait_jobs("append", 1)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert len(job.files) == 5 and job.rows == 50
    assert env.rows("SELECT COUNT(*), COUNT(DISTINCT id) FROM it.append_rows") == [(50, 50)]
    assert env.rows("SELECT counted FROM it.row_counts") == [(50,)]  # CALL it.count_rows() in the same transaction


def test_every_event_and_message_delivered_twice_still_loads_once(env):
    body = csv_text(["id", "name", "amount"], [[1, "a", "2.00"], [2, "b", "3.00"]])
    env.put("gz/dup/one.csv.gz", gzip.compress(body.encode()))
    (job,) = env.wait_jobs("gz", 1)
    assert job.status is JobStatus.SUCCEEDED, job.error
    # Re-deliver the S3 notification for the same object version, and the job message.
    landing = env.sqs.get_queue_url(QueueName="redshift-loader-landing")["QueueUrl"]
    head = env.s3.head_object(Bucket="it-landing", Key="gz/dup/one.csv.gz")
    record = {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
              "eventTime": "2026-11-22T10:00:00.000Z", "eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": "it-landing"},
                     "object": {"key": "gz/dup/one.csv.gz", "size": head["ContentLength"], "eTag": head["ETag"].strip('"')}}}
    env.sqs.send_message(QueueUrl=landing, MessageBody=json.dumps({"Records": [record]}))
    env.sqs.send_message(QueueUrl=landing, MessageBody=json.dumps({"Records": [record]}))
    jobs_url = env.sqs.get_queue_url(QueueName="redshift-loader-jobs.fifo")["QueueUrl"]
    env.sqs.send_message(QueueUrl=jobs_url, MessageBody=json.dumps({"job_id": job.id}),
                         MessageGroupId="main:it.gz_rows", MessageDeduplicationId=f"{job.id}-again")
    time.sleep(4)
    assert len(env.jobs("gz")) == 1
    assert env.rows("SELECT COUNT(*) FROM it.gz_rows") == [(2,)]


def test_upsert_latest_file_wins_and_a_reupload_replaces_rows(env):
    header = ["id", "name", "tier"]
    env.put("upsert/a.csv", csv_text(header, [[1, "ann", "gold"], [2, "bob", "silver"], [3, "cy", "bronze"]]))
    env.put("upsert/b.csv", csv_text(header, [[2, "bob", "gold"], [4, "dee", "silver"]]))
    jobs = env.wait_jobs("upsert", 1)
    assert all(j.status is JobStatus.SUCCEEDED for j in jobs), [j.error for j in jobs]
    assert env.rows("SELECT id, name, tier FROM it.customers ORDER BY id") == [
        (1, "ann", "gold"), (2, "bob", "gold"), (3, "cy", "bronze"), (4, "dee", "silver")]
    # Same key, new content: a new version, loaded again, replacing the rows by key.
    env.put("upsert/a.csv", csv_text(header, [[1, "ann", "platinum"], [3, "cy", "gold"]]))
    env.wait_jobs("upsert", len(jobs) + 1)
    assert env.rows("SELECT id, tier FROM it.customers ORDER BY id") == [
        (1, "platinum"), (2, "gold"), (3, "gold"), (4, "silver")]
    assert env.rows("SELECT COUNT(*) FROM it.customers WHERE seq IS NULL OR loaded_at IS NULL") == [(0,)]


def test_replace_swaps_the_whole_table_in_one_transaction(env):
    env.put("replace/v1.csv", csv_text(["id", "label"], [[1, "a"], [2, "b"], [3, "c"]]))
    env.wait_jobs("replace", 1)
    env.put("replace/v2.csv", csv_text(["id", "label"], [[9, "z"]]))
    jobs = env.wait_jobs("replace", 2)
    assert [j.status for j in jobs] == [JobStatus.SUCCEEDED] * 2
    assert env.rows("SELECT id, label FROM it.snapshot") == [(9, "z")]


def test_bad_row_fails_the_job_with_file_line_column_and_value(env):
    before = env.rows("SELECT COUNT(*) FROM it.snapshot")
    env.put("replace/bad.csv", csv_text(["id", "label"], [[1, "ok"], ["two", "bad"], [3, "ok"]]))
    jobs = env.wait_jobs("replace", 3)
    failed = jobs[-1]
    assert failed.status is JobStatus.FAILED
    assert "stl_load_errors" in failed.error
    (err,) = failed.load_errors
    assert err.file == "s3://it-landing/replace/bad.csv"
    # Serverless has only SYS_LOAD_ERROR_DETAIL, whose message names the offending character
    # (Redshift's wording: "Invalid digit, Value 't', Pos 0, Type: Integer").
    assert err.line == 3 and err.column == "id" and err.value == "t" and err.code == 1207
    assert "Invalid digit" in err.reason
    assert env.rows("SELECT COUNT(*) FROM it.snapshot") == before  # DELETE rolled back with the failed COPY
    status = env.stack.service().ledger.file_status(failed.files[0])
    assert status == "FAILED"


def test_other_warehouse_json_load(env):
    lines = [json.dumps({"event_id": f"e{i}", "user_id": i, "kind": "click"}) for i in range(20)]
    env.put("events/2026/a.json", "\n".join(lines) + "\n", bucket="it-events")
    (job,) = env.wait_jobs("json", 1)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert env.rows("SELECT COUNT(*) FROM public.events", warehouse="other") == [(20,)]


def test_two_tables_load_in_parallel_one_table_loads_one_job_at_a_time(env):
    for name in ("a", "b"):
        env.put(f"slow-{name}/1.csv", "1\n")
        env.put(f"slow-{name}/2.csv", "2\n")
    # Ordered by when they ran: two files landing together may queue in either order.
    a1, a2 = sorted(env.wait_jobs("slow_a", 2, timeout=60), key=lambda j: j.submitted_at or 0)
    b1, b2 = sorted(env.wait_jobs("slow_b", 2, timeout=60), key=lambda j: j.submitted_at or 0)
    assert all(j.status is JobStatus.SUCCEEDED for j in (a1, a2, b1, b2))
    # Same table: the second job is submitted only after the first finished.
    assert a2.submitted_at >= a1.finished_at and b2.submitted_at >= b1.finished_at
    # Different tables: their jobs ran at the same time.
    assert a1.submitted_at < b1.finished_at and b1.submitted_at < a1.finished_at


def test_a_bad_file_does_not_hold_back_the_good_files_batched_with_it(env):
    before = {j.id for j in env.jobs("append")}
    env.put("append/split/good.csv", csv_text(["id", "name", "amount"], [[81001, "g", "1.00"], [81002, "h", "2.00"]]))
    env.put("append/split/bad.csv", csv_text(["id", "name", "amount"], [["x", "b", "1.00"]]))

    def settled():
        jobs = [j for j in env.jobs("append") if j.id not in before]
        files = {f.key: j.status for j in jobs for f in j.files if j.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)}
        good_loaded = files.get("append/split/good.csv") is JobStatus.SUCCEEDED
        return jobs if good_loaded and "append/split/bad.csv" in files and all(
            j.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) for j in jobs) else None

    jobs = env.stack.wait_for(settled, timeout=60, what="good file loaded, bad file reported")
    (failed,) = [j for j in jobs if j.status is JobStatus.FAILED]
    assert [e.file for e in failed.load_errors] == ["s3://it-landing/append/split/bad.csv"]
    assert env.rows("SELECT COUNT(*) FROM it.append_rows WHERE id IN (81001, 81002)") == [(2,)]
