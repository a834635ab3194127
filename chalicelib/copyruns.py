"""Copy runs: copy tables or whole schemas between warehouses, one TABLE_COPY job per table.

A COPY_RUN job lists its tables once (explicit ones plus the base tables of its schemas, without
materialized views' backing tables), then starts table jobs in lanes: table k may start once
table k - max_parallel has ended, so at most max_parallel run at once however many workers race
(child ids are fixed by run, round and position, and creating one is a conditional write). Each
table job that ends moves its run on; the sweeper does too, should that hook be missed.

When every table has ended, views, late-binding views and procedures of the schemas are recreated
on the target in dependency order, materialized views recreated and refreshed last (each such
statement on its own: Redshift refreshes an MV in a transaction of its own). The run's report
(JSON, in S3 beside the staging files and over HTTP) lists every table with its status and reason;
retrying the run runs only the tables that did not succeed, as a new round.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import logs
from chalicelib.jobs import Job, JobKind, JobStatus
from chalicelib.movesteps import split_url
from chalicelib.pipelines import Warehouse
from chalicelib.ports import StatementInfo
from chalicelib.service import TERMINAL, JobFailure, Service, StepOutcome
from chalicelib.sql import MAX_BATCH_STATEMENTS, quote_ident
from chalicelib.sql_moves import (render_create_schema, render_list_materialized_views, render_list_procedures,
                                  render_list_tables, render_list_views, render_refresh, render_show_procedure,
                                  render_show_view, render_view_dependencies)


def child_id(run_id: str, round_no: int, index: int) -> str:
    return f"{run_id}-r{round_no}-{index:04d}"


class CopyRuns:
    def __init__(self, service: Service) -> None:
        self.service = service

    # --------------------------------------------------------- tables phase
    def supervises(self, job: Job) -> bool:
        return job.step == 0 and job.status in (JobStatus.QUEUED, JobStatus.RUNNING)

    def supervise(self, job: Job) -> None:
        if not self.supervises(job):
            return
        with logs.bound(job_id=job.id, pipeline=job.pipeline, table=job.target):
            if job.status is JobStatus.QUEUED:
                started = self._start(job)
                if started is None:
                    return
                job = started
            self._advance(job)

    def _start(self, job: Job) -> Job | None:
        """QUEUED -> RUNNING; the first time, list the tables to copy."""
        results = dict(job.results)
        if "tables" not in results:
            try:
                tables = self._list_tables(job)
            except JobFailure as exc:
                self._end(job, error=str(exc))
                return None
            results.update(tables=tables, round=1, rounds=[list(range(len(tables)))])
            if job.params.get("create_missing", True):
                # Before the tables start: two tables creating their schema at once would collide.
                target = self._warehouse(job.params["target"])
                for schema in sorted({t.split(".")[0] for t in tables}):
                    self.service.warehouse.query(target, render_create_schema(schema))
        running = job.transition(JobStatus.RUNNING, self.service.clock.now(), results=results)
        if not self.service.ledger.save_job(running, expected=JobStatus.QUEUED, expected_attempt=job.attempt):
            return None  # someone else started it
        logs.info("copy_run_started", tables=len(results["tables"]), round=results["round"])
        return running

    def _list_tables(self, job: Job) -> list[str]:
        p = job.params
        tables = list(p.get("tables", []))
        if p.get("schemas"):
            rows = self.service.warehouse.query(self._warehouse(p["source"]), render_list_tables(p["schemas"]))
            tables += [f"{r['table_schema']}.{r['table_name']}".lower() for r in rows]
        unique = sorted(set(tables))
        if not unique:
            raise JobFailure(f"no tables to copy: schemas {', '.join(p.get('schemas', []))} of warehouse "
                             f"'{p['source']}' have no tables")
        return unique

    def _advance(self, job: Job) -> None:
        results = job.results
        round_no, run = int(results["round"]), list(results["rounds"][-1])
        lanes = int(job.params.get("max_parallel", 4))
        statuses: list[JobStatus | None] = []
        for k, index in enumerate(run):
            child = self.service.ledger.get_job(child_id(job.id, round_no, index))
            if child is None and (k < lanes or statuses[k - lanes] in TERMINAL):
                child = self._create_child(job, round_no, index)
            statuses.append(child.status if child else None)
        if all(s in TERMINAL for s in statuses):
            self._tables_done(job)

    def _create_child(self, run: Job, round_no: int, index: int) -> Job | None:
        p = run.params
        table = run.results["tables"][index]
        now = self.service.clock.now()
        child = Job(id=child_id(run.id, round_no, index), kind=JobKind.TABLE_COPY, pipeline=run.pipeline,
                    target=f"{p['target']}:{table}", status=JobStatus.QUEUED, files=(), statement_id=None, attempt=1,
                    max_attempts=self.service.settings.max_attempts, created_at=now, updated_at=now,
                    submitted_at=None, finished_at=None, rows=None, error=None, parent=run.id,
                    params={"source": p["source"], "target": p["target"], "table": table, "target_table": table,
                            "url": f"{p['run_url']}{table}/r{round_no}/", "mode": p["mode"],
                            "create_missing": p["create_missing"], "clean_staging": p["clean_staging"],
                            "verify_counts": p["verify_counts"], "allow_new_columns": p["allow_new_columns"],
                            "kms_key_id": p.get("kms_key_id")})
        if self.service.ledger.create_job(child):
            logs.info("copy_table_queued", child_id=child.id, copy_table=table)
        else:
            child = self.service.ledger.get_job(child.id) or child
        # Again when it already existed: harmless (the worker checks status), and covers a lost message.
        if child.status is JobStatus.QUEUED:
            self.service.queue.enqueue_job(child.id, group=child.target, dedup_id=f"{child.id}-{child.attempt}")
        return child

    def _tables_done(self, job: Job) -> None:
        p = job.params
        report = self.report(job)
        # Views over a table that failed would fail too: the objects wait until every table is in.
        if p.get("include_views", True) and p.get("schemas") and not report["failed"]:
            now = self.service.clock.now()
            objects = job.transition(JobStatus.QUEUED, now, step=1, statement_id=None, error=None)
            if self.service.ledger.save_job(objects, expected=JobStatus.RUNNING, expected_attempt=job.attempt):
                self.service.queue.enqueue_job(job.id, group=job.target,
                                               dedup_id=f"{job.id}-{job.attempt}-objects-{job.results['round']}")
                logs.info("copy_run_objects_queued")
            return
        self.write_report(job, report)
        self._end(job, error=_failed_tables_error(report), rows=report["rows"])

    def _end(self, job: Job, *, error: str | None, rows: int | None = None) -> None:
        now = self.service.clock.now()
        status = JobStatus.FAILED if error else JobStatus.SUCCEEDED
        ended = job.transition(status, now, finished_at=now, error=error, rows=rows)
        if self.service.ledger.save_job(ended, expected=job.status, expected_attempt=job.attempt):
            logs.info("job_finished", status=status.value, rows=rows, error=error)
            self.service.notifier.job_finished(ended)

    # -------------------------------------------------------- objects phase
    def plan(self, job: Job) -> tuple[Warehouse, list[str]]:
        target = self._warehouse(job.params["target"])
        bucket, key = split_url(job.params["run_url"] + "objects.json")
        if job.step == 1:
            units = self._object_units(job)
            self.service.storage.put_text(bucket, key, json.dumps(units))
        else:
            text = self.service.storage.get_text(bucket, key)
            if text is None:
                raise JobFailure(f"the run's object list {job.params['run_url']}objects.json is missing")
            units = json.loads(text)
        return target, list(units[job.step - 1])

    def _object_units(self, job: Job) -> list[list[str]]:
        """Transactions to run in order: schemas, views and procedures; each MV on its own; refreshes last."""
        p = job.params
        schemas: list[str] = list(p["schemas"])
        source = self._warehouse(p["source"])
        query = self.service.warehouse.query
        mvs = [(r["schema"], r["name"]) for r in query(source, render_list_materialized_views(schemas))]
        views = [(r["table_schema"], r["table_name"]) for r in query(source, render_list_views(schemas))]
        views = [v for v in views if v not in mvs]
        deps = [((r["view_schema"], r["view_name"]), (r["dep_schema"], r["dep_name"]))
                for r in query(source, render_view_dependencies(schemas))]
        units: list[list[str]] = []
        batch = [render_create_schema(s) for s in schemas]

        def flush() -> None:
            if batch:
                units.append(list(batch))
                batch.clear()

        for obj in dependency_order(views + mvs, deps):
            ddl = view_ddl(obj, _first_value(query(source, render_show_view(*obj)), f"SHOW VIEW {obj[0]}.{obj[1]}"))
            if obj in mvs:
                flush()
                units.append([f"DROP MATERIALIZED VIEW IF EXISTS {_name(obj)} CASCADE"])
                units.append([ddl])
            else:
                batch.append(ddl)
                if len(batch) == MAX_BATCH_STATEMENTS:
                    flush()
        for r in query(source, render_list_procedures(schemas)):
            batch.append(_first_value(query(source, render_show_procedure(r["schema"], r["name"], r["args"])),
                                      f"SHOW PROCEDURE {r['schema']}.{r['name']}"))
            if len(batch) == MAX_BATCH_STATEMENTS:
                flush()
        flush()
        units += [[render_refresh(*mv)] for mv in mvs]
        logs.info("copy_run_objects", views=len(views), materialized_views=len(mvs), transactions=len(units))
        return units or [[render_create_schema(s) for s in schemas]]

    def step_done(self, job: Job, info: StatementInfo) -> StepOutcome:
        bucket, key = split_url(job.params["run_url"] + "objects.json")
        text = self.service.storage.get_text(bucket, key)
        if text is not None and job.step < len(json.loads(text)):
            return StepOutcome(next_step=job.step + 1)
        report = self.write_report(job)
        return StepOutcome(rows=report["rows"], error=_failed_tables_error(report),
                           results={"report_url": report["report_url"]})

    def explain(self, job: Job, info: StatementInfo, error: str) -> str:
        return f"recreating views and procedures on '{job.params['target']}' failed: {error}"

    def finished(self, job: Job) -> None:
        if job.status is JobStatus.FAILED and job.step > 0 and "report_url" not in job.results:
            self.write_report(job)

    # ---------------------------------------------------------------- retry
    def retry(self, job: Job) -> Job:
        """Run again only the tables that did not succeed (a new round), then the objects again."""
        results = dict(job.results)
        if "tables" not in results:
            return self.service.requeue(job, step=0)
        report = self.report(job)
        again = [i for i, t in enumerate(report["tables"]) if t["status"] != JobStatus.SUCCEEDED.value]
        results.update(round=int(results["round"]) + 1, rounds=[*results["rounds"], again])
        results.pop("report_url", None)
        logs.info("copy_run_retry", tables=[report["tables"][i]["table"] for i in again])
        return self.service.requeue(job, step=0, results=results)

    # --------------------------------------------------------------- report
    def report(self, job: Job) -> dict[str, Any]:
        results = job.results
        tables: list[str] = list(results.get("tables", []))
        latest: dict[int, int] = {}
        for round_no, run in enumerate(results.get("rounds", []), start=1):
            for index in run:
                latest[index] = round_no
        entries = []
        for index, table in enumerate(tables):
            child = self.service.ledger.get_job(child_id(job.id, latest.get(index, 1), index))
            entries.append({"table": table, "status": child.status.value if child else "PENDING",
                            "job_id": child.id if child else None, "rows": child.rows if child else None,
                            "error": _reason(child), "round": latest.get(index, 1)})
        count = {s: sum(1 for e in entries if e["status"] == s) for s in ("SUCCEEDED", "FAILED", "CANCELLED")}
        return {"run": job.id, "copy": job.pipeline, "source": job.params.get("source"),
                "target": job.params.get("target"), "status": job.status.value, "round": results.get("round", 1),
                "tables_total": len(entries), "succeeded": count["SUCCEEDED"],
                "failed": count["FAILED"] + count["CANCELLED"],
                "pending": len(entries) - sum(count.values()),
                "rows": sum(e["rows"] or 0 for e in entries if e["status"] == "SUCCEEDED"),
                "tables": entries, "report_url": job.params["run_url"] + "report.json"}

    def write_report(self, job: Job, report: dict[str, Any] | None = None) -> dict[str, Any]:
        report = report or self.report(job)
        bucket, key = split_url(report["report_url"])
        self.service.storage.put_text(bucket, key, json.dumps(report, indent=1))
        return report

    def _warehouse(self, name: str) -> Warehouse:
        try:
            return self.service.catalog.warehouse(name)
        except KeyError as exc:
            raise JobFailure(str(exc)) from None


def dependency_order(objects: list[tuple[str, str]], deps: list[tuple[tuple[str, str], tuple[str, str]]]
                     ) -> list[tuple[str, str]]:
    """Objects so that each comes after what it depends on (ties by name; cycles last, by name)."""
    pending = set(objects)
    needs = {o: {d for v, d in deps if v == o and d in pending and d != o} for o in objects}
    ordered: list[tuple[str, str]] = []
    while pending:
        ready = sorted(o for o in pending if not (needs[o] & pending))
        if not ready:  # a cycle (should not happen): keep going in name order
            ready = [min(pending)]
        for o in ready:
            ordered.append(o)
            pending.discard(o)
    return ordered


def view_ddl(obj: tuple[str, str], shown: str) -> str:
    """SHOW VIEW prints a plain view as its SELECT only (late-binding and materialized views as a
    whole CREATE statement): make it a statement that recreates the view."""
    text = shown.strip().rstrip(";").strip()
    if text.upper().startswith("CREATE "):
        return text
    return f"CREATE OR REPLACE VIEW {_name(obj)} AS {text}"


def _reason(child: Job | None) -> str | None:
    """A table job's error, with its first bad row (column, value, reason) when a COPY failed on one."""
    if child is None or child.error is None:
        return None
    if not child.load_errors:
        return child.error
    e = child.load_errors[0]
    return f"{child.error} First bad row: line {e.line}, column {e.column}, value {e.value!r}: {e.reason}"


def _first_value(rows: list[dict[str, Any]], what: str) -> str:
    if not rows or not rows[0]:
        raise JobFailure(f"{what} returned nothing")
    return str(next(iter(rows[0].values())))


def _name(obj: tuple[str, str]) -> str:
    return f"{quote_ident(obj[0])}.{quote_ident(obj[1])}"


def _failed_tables_error(report: dict[str, Any]) -> str | None:
    failed = [t for t in report["tables"] if t["status"] != "SUCCEEDED"]
    if not failed:
        return None
    listed = "; ".join(f"{t['table']}: {t['error'] or t['status']}" for t in failed[:5])
    more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
    return f"{len(failed)} of {report['tables_total']} tables failed ({listed}{more})"
