"""AWS DMS: confirm why a replication task stopped when its event message is ambiguous."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.aws import client


class DmsTasks:
    def __init__(self, api: Any | None = None) -> None:
        self._api = api

    def _describe(self, task: str) -> dict | None:
        api = self._api or client("dms")
        name = "replication-task-arn" if task.startswith("arn:") else "replication-task-id"
        tasks = api.describe_replication_tasks(Filters=[{"Name": name, "Values": [task]}],
                                               WithoutSettings=True).get("ReplicationTasks", [])
        return tasks[0] if tasks else None

    def task_identifier(self, task_arn: str) -> str | None:
        task = self._describe(task_arn)
        return task.get("ReplicationTaskIdentifier") if task else None

    def stop_reason(self, task: str) -> str | None:
        found = self._describe(task)
        if not found:
            return None
        reason = found.get("StopReason") or ""
        # DMS reports e.g. "Stop Reason FULL_LOAD_ONLY_FINISHED"; keep only the code.
        return reason.replace("Stop Reason", "").strip().split()[0] if reason.strip() else None
