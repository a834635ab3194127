"""The steps of UNLOAD, ARCHIVE and TABLE_COPY jobs: what each step sends, and what its end means.

UNLOAD      0: UNLOAD to the run's folder (MANIFEST VERBOSE: the manifest counts the rows).
ARCHIVE     0: UNLOAD rows older than the cutoff.  1: LOCK, guard (still exactly that many rows older
               than the cutoff), DELETE them, in one transaction; skipped when nothing was unloaded.
TABLE_COPY  0: UNLOAD the source table as Parquet to a staging folder (on the source warehouse).
            1: on the target: create the table from the source's DDL if missing (or add new columns
               when allowed), LOCK, DELETE (replace), COPY from the manifest, guard on the row count.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import logs
from chalicelib.jobs import Job, JobKind, JobStatus
from chalicelib.movespecs import UnloadOptions
from chalicelib.pipelines import TableName, Warehouse
from chalicelib.ports import StatementInfo
from chalicelib.service import JobFailure, Service, StepOutcome
from chalicelib.sql_moves import (column_type_sql, guard_label, render_add_column, render_archive_delete,
                                  render_columns_query, render_copy_parquet, render_count, render_count_guard,
                                  render_create_schema, render_delete_all, render_lock, render_select_table,
                                  render_show_table, render_unload, retarget_ddl, cutoff_literal)
from chalicelib.sql import quote_ident

def table_of(text: str) -> TableName:
    schema, name = text.split(".", 1)
    return TableName(schema, name)


def split_url(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


class MoveSteps:
    def __init__(self, service: Service) -> None:
        self.service = service

    # ----------------------------------------------------------------- plan
    def plan(self, job: Job) -> tuple[Warehouse, list[str]]:
        p = job.params
        if job.kind is JobKind.UNLOAD:
            wh = self._warehouse(p["warehouse"])
            options = UnloadOptions.from_params(p["options"])
            return wh, [render_unload(p["select"], p["url"], iam_role=wh.iam_role or "", options=options,
                                      cleanpath=True, verbose_manifest=options.manifest)]
        if job.kind is JobKind.ARCHIVE:
            wh = self._warehouse(p["warehouse"])
            table = table_of(p["table"])
            if job.step == 0:
                options = UnloadOptions.from_params(p["options"])
                return wh, [render_unload(p["select"], p["url"], iam_role=wh.iam_role or "", options=options,
                                          cleanpath=True, verbose_manifest=True)]
            where = f"{quote_ident(p['column'])} < {cutoff_literal(p['cutoff'])}"
            return wh, [render_lock(table),
                        render_count_guard(render_count(table, where), int(job.results["unloaded_rows"]),
                                           "archived_rows"),
                        render_archive_delete(table, p["column"], p["cutoff"])]
        if job.kind is JobKind.TABLE_COPY:
            return self._plan_copy(job)
        raise ValueError(f"job {job.id}: MoveSteps does not run {job.kind.value} jobs")

    def _plan_copy(self, job: Job) -> tuple[Warehouse, list[str]]:
        p = job.params
        source, target = table_of(p["table"]), table_of(p["target_table"])
        src, tgt = self._warehouse(p["source"]), self._warehouse(p["target"])
        if job.step == 0:
            options = UnloadOptions(format="parquet", manifest=True, kms_key_id=p.get("kms_key_id"))
            return src, [render_unload(render_select_table(source), p["url"], iam_role=src.iam_role or "",
                                       options=options, cleanpath=True, verbose_manifest=True)]
        columns: list[str] = list(job.results["columns"])
        rows = int(job.results["source_rows"])
        sqls: list[str] = []
        existing = [c.lower() for c in self.service.warehouse.table_columns(tgt, target)]
        if not existing:
            if not p.get("create_missing", True):
                raise JobFailure(f"target table {target.qualified} does not exist in warehouse '{tgt.name}' "
                                 "(create it, or set create_missing = true)")
            sqls += [render_create_schema(target.schema), retarget_ddl(self._show_table(src, source), source, target)]
        else:
            only_source = [c for c in columns if c not in existing]
            only_target = [c for c in existing if c not in columns]
            if only_source and p.get("allow_new_columns") and not only_target:
                types = self._column_types(src, source)
                sqls += [render_add_column(target, c, types[c]) for c in only_source]
                logs.info("copy_adding_columns", columns=only_source)
            elif only_source or only_target:
                raise JobFailure(
                    f"columns differ between source {src.name}:{source.qualified} and target "
                    f"{tgt.name}:{target.qualified}: "
                    + "; ".join(part for part in (
                        f"only in source: {', '.join(only_source)}" if only_source else "",
                        f"only in target: {', '.join(only_target)}" if only_target else "") if part)
                    + ("" if p.get("allow_new_columns") or only_target else
                       " (set allow_new_columns = true to add the source's new columns)"))
        sqls.append(render_lock(target))
        if p.get("mode", "replace") == "replace":
            sqls.append(render_delete_all(target))
        if rows:
            sqls.append(render_copy_parquet(target, job.results["manifest"], iam_role=tgt.iam_role or "",
                                            columns=columns))
        if p.get("verify_counts", True):
            if p.get("mode", "replace") == "replace":
                sqls.append(render_count_guard(render_count(target), rows, "target_rows"))
            elif rows:
                sqls.append(render_count_guard("SELECT pg_last_copy_count()", rows, "copied_rows"))
        return tgt, sqls

    # ------------------------------------------------------------ step ends
    def step_done(self, job: Job, info: StatementInfo) -> StepOutcome:
        p = job.params
        if job.kind is JobKind.UNLOAD:
            manifest = self._manifest(p["url"]) if p["options"].get("manifest") else None
            rows = _manifest_rows(manifest) if manifest else info.rows
            results: dict[str, Any] = {"url": p["url"], "rows": rows}
            if manifest:
                results.update(manifest=p["url"] + "manifest", files=len(manifest.get("entries", [])))
            return StepOutcome(rows=rows, results=results)
        if job.kind is JobKind.ARCHIVE:
            if job.step == 0:
                manifest = self._manifest(p["url"])
                if manifest is None:
                    return StepOutcome(error=f"the UNLOAD finished but its manifest {p['url']}manifest is missing; "
                                             "nothing was deleted")
                rows = _manifest_rows(manifest)
                results = {"unloaded_rows": rows, "manifest": p["url"] + "manifest", "url": p["url"]}
                if rows == 0:
                    logs.info("archive_nothing_to_do", cutoff=p["cutoff"])
                    return StepOutcome(rows=0, results={**results, "deleted_rows": 0})
                return StepOutcome(next_step=1, results=results)
            deleted = _last_rows(info)
            return StepOutcome(rows=deleted, results={"deleted_rows": deleted})
        if job.kind is JobKind.TABLE_COPY:
            if job.step == 0:
                manifest = self._manifest(p["url"])
                if manifest is None:
                    return StepOutcome(error=f"the UNLOAD finished but its manifest {p['url']}manifest is missing")
                columns = [str(e["name"]).lower() for e in manifest.get("schema", {}).get("elements", [])]
                if not columns:
                    return StepOutcome(error=f"the manifest {p['url']}manifest lists no columns (need MANIFEST VERBOSE)")
                return StepOutcome(next_step=1, results={"source_rows": _manifest_rows(manifest), "columns": columns,
                                                         "manifest": p["url"] + "manifest"})
            rows = int(job.results["source_rows"])
            return StepOutcome(rows=rows, results={"target_rows": rows if p.get("verify_counts", True) else None})
        raise ValueError(f"job {job.id}: MoveSteps does not run {job.kind.value} jobs")

    def explain(self, job: Job, info: StatementInfo, error: str) -> str:
        """A failed guard says which count did not match, and what that means for the data."""
        failed = next((s for s in info.sub_statements if s.status == "FAILED"), None)
        label = guard_label(failed.sql) if failed else None
        if label == "archived_rows":
            return (f"archive of {job.params['table']} stopped before deleting anything: "
                    f"{job.results.get('unloaded_rows')} rows were unloaded to {job.params['url']}, but the number of "
                    f"rows older than {job.params['cutoff']} has changed since; retry to unload again")
        if label == "target_rows":
            return (f"row count check failed: the target {job.params['target']}:{job.params['target_table']} would "
                    f"not hold the {job.results.get('source_rows')} rows unloaded from the source; rolled back")
        if label == "copied_rows":
            return (f"row count check failed: COPY into {job.params['target']}:{job.params['target_table']} did "
                    f"not load the {job.results.get('source_rows')} rows unloaded from the source; rolled back")
        return error

    def finished(self, job: Job) -> None:
        if job.kind is not JobKind.TABLE_COPY:
            return
        if job.status is JobStatus.SUCCEEDED and job.params.get("clean_staging", True):
            bucket, prefix = split_url(job.params["url"])
            removed = self.service.storage.delete_prefix(bucket, prefix)
            logs.info("copy_staging_cleaned", url=job.params["url"], objects=removed)
        if job.parent:
            runs = self.service.runners[JobKind.COPY_RUN]
            parent = self.service.ledger.get_job(job.parent)
            if parent is not None:
                runs.supervise(parent)

    def supervises(self, job: Job) -> bool:
        return False

    def supervise(self, job: Job) -> None:
        raise ValueError(f"job {job.id}: {job.kind.value} jobs have no supervisor")

    def retry(self, job: Job) -> Job:
        if job.parent:
            raise JobFailure(f"job '{job.id}' is one table of copy run '{job.parent}': retry the run, which "
                             "retries only its failed tables")
        # From the first step: an archive must unload again (the table may have changed since).
        return self.service.requeue(job, step=0, results={})

    # ---------------------------------------------------------------- reads
    def _warehouse(self, name: str) -> Warehouse:
        try:
            return self.service.catalog.warehouse(name)
        except KeyError as exc:
            raise JobFailure(str(exc)) from None

    def _manifest(self, url: str) -> dict[str, Any] | None:
        bucket, key = split_url(url + "manifest")
        text = self.service.storage.get_text(bucket, key)
        return json.loads(text) if text else None

    def _show_table(self, warehouse: Warehouse, table: TableName) -> str:
        rows = self.service.warehouse.query(warehouse, render_show_table(table))
        if not rows or not rows[0]:
            raise JobFailure(f"SHOW TABLE {table.qualified} on '{warehouse.name}' returned nothing")
        return str(next(iter(rows[0].values())))

    def _column_types(self, warehouse: Warehouse, table: TableName) -> dict[str, str]:
        rows = self.service.warehouse.query(warehouse, render_columns_query(table))
        try:
            return {str(r["column_name"]).lower(): column_type_sql(r) for r in rows}
        except ValueError as exc:
            raise JobFailure(str(exc)) from None


def _manifest_rows(manifest: dict[str, Any]) -> int:
    meta = manifest.get("meta") or {}
    if "record_count" in meta:
        return int(meta["record_count"])
    return sum(int((e.get("meta") or {}).get("record_count", 0)) for e in manifest.get("entries", []))


def _last_rows(info: StatementInfo) -> int | None:
    subs = [s for s in info.sub_statements if s.rows is not None and s.rows >= 0]
    return subs[-1].rows if subs else info.rows
