"""The HTTP API described as OpenAPI 3.0; served at GET /openapi.json and tested against the routes."""

from __future__ import annotations

from typing import Any

_ERROR = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string", "description": "what is wrong, naming the field"},
    "field": {"type": "string"}}}
_TIME = {"type": "string", "format": "date-time", "nullable": True}
_LOAD_ERROR = {"type": "object", "properties": {
    "file": {"type": "string"}, "line": {"type": "integer", "nullable": True}, "column": {"type": "string"},
    "value": {"type": "string"}, "reason": {"type": "string"}, "code": {"type": "integer", "nullable": True}}}
_STATUS = ["QUEUED", "SUBMITTED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
_JOB = {"type": "object", "required": ["id", "kind", "pipeline", "status", "attempt", "created_at"], "properties": {
    "id": {"type": "string"}, "kind": {"type": "string", "enum": [
        "LOAD", "FOLLOWUP", "UNLOAD", "ARCHIVE", "TABLE_COPY", "COPY_RUN"]},
    "pipeline": {"type": "string"}, "target": {"type": "string"},
    "status": {"type": "string", "enum": _STATUS},
    "attempt": {"type": "integer"}, "max_attempts": {"type": "integer"},
    "created_at": _TIME, "updated_at": _TIME, "submitted_at": _TIME, "finished_at": _TIME,
    "duration_seconds": {"type": "number", "nullable": True},
    "files": {"type": "array", "items": {"type": "string"}}, "file_count": {"type": "integer"},
    "bytes": {"type": "integer"}, "rows": {"type": "integer", "nullable": True},
    "statement_id": {"type": "string", "nullable": True}, "steps": {"type": "array", "items": {"type": "string"}},
    "error": {"type": "string", "nullable": True}, "load_errors": {"type": "array", "items": _LOAD_ERROR},
    "params": {"type": "object", "description": "what an unload, archive or copy does"},
    "results": {"type": "object", "description": "what its finished steps found (rows, files, manifest)"},
    "parent": {"type": "string", "description": "the copy run a table copy belongs to"}}}
_UNLOAD_OPTIONS = {
    "format": {"type": "string", "enum": ["csv", "parquet", "json"]}, "header": {"type": "boolean"},
    "compression": {"type": "string", "enum": ["gzip", "bzip2", "zstd"]},
    "partition_by": {"type": "array", "items": {"type": "string"}},
    "max_file_size_mb": {"type": "integer", "minimum": 5, "maximum": 6200}, "manifest": {"type": "boolean"},
    "kms_key_id": {"type": "string"}, "parallel": {"type": "boolean"},
    "overwrite": {"type": "boolean", "description": "write into the prefix itself instead of a run folder"}}


def _move(kind: str, summary: str, fields: dict[str, Any]) -> dict[str, Any]:
    """POST /unloads, /copies, /archives: a configured entry by name, or ad hoc fields."""
    named = {"type": "object", "required": [kind], "additionalProperties": False,
             "properties": {kind: {"type": "string", "minLength": 1}}}
    ad_hoc = {"type": "object", "additionalProperties": False, "properties": fields}
    return {"post": {"summary": summary, "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"oneOf": [named, ad_hoc]}}}},
        "responses": {"202": _json({"$ref": "#/components/schemas/Job"}, "the job"), **_errors(400, 404)}}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "invalid request (the message names the field)", 404: "not found", 409: "not allowed in this state"}
    return {str(c): _json({"$ref": "#/components/schemas/Error"}, text[c]) for c in codes}


_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}


def document() -> dict[str, Any]:
    job_ref = {"$ref": "#/components/schemas/Job"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "redshift-loader", "version": "1.0.0",
                 "description": "Load files from S3 into Redshift, run DMS follow-ups, and see the jobs."},
        "security": [{"sigv4": []}],
        "components": {
            "securitySchemes": {"sigv4": {"type": "apiKey", "name": "Authorization", "in": "header",
                                          "description": "AWS SigV4 (IAM); not required on devstack"}},
            "schemas": {"Error": _ERROR, "Job": _JOB, "LoadError": _LOAD_ERROR},
        },
        "paths": {
            "/health": {"get": {"summary": "Ledger and warehouse reachability", "security": [], "responses": {
                "200": _json({"type": "object", "required": ["status", "checks"]}, "healthy"),
                "503": _json({"type": "object", "required": ["status", "checks"]}, "a dependency is down")}}},
            "/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": _json({"type": "object"}, "OpenAPI 3 document")}}},
            "/pipelines": {"get": {"summary": "The validated catalog, without secrets", "responses": {
                "200": _json({"type": "object", "required": ["warehouses", "loads", "dms_followups"]}, "catalog")}}},
            "/loads": {"post": {
                "summary": "Load given keys, or every file under a prefix, into a pipeline now",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["pipeline"], "additionalProperties": False, "properties": {
                        "pipeline": {"type": "string", "minLength": 1},
                        "keys": {"type": "array", "minItems": 1, "maxItems": 1000,
                                 "items": {"type": "string", "minLength": 1}},
                        "prefix": {"type": "string", "minLength": 1},
                        "force": {"type": "boolean", "description": "reload files already loaded"}}}}}},
                "responses": {"202": _json({"type": "object", "required": ["pipeline", "jobs"], "properties": {
                    "pipeline": {"type": "string"}, "jobs": {"type": "array", "items": {"type": "string"}},
                    "queued_files": {"type": "array", "items": {"type": "string"}},
                    "already_loaded": {"type": "array", "items": {"type": "string"}},
                    "skipped": {"type": "array", "items": {"type": "object"}}}}, "accepted"),
                    **_errors(400, 404)}}},
            "/unloads": _move("unload", "Unload a table (or a configured unload's query) to S3 now", {
                "warehouse": {"type": "string"}, "table": {"type": "string"}, "bucket": {"type": "string"},
                "prefix": {"type": "string"}, **_UNLOAD_OPTIONS}),
            "/copies": _move("copy", "Copy tables or whole schemas between warehouses (one job per table)", {
                "source": {"type": "string"}, "target": {"type": "string"},
                "tables": {"type": "array", "items": {"type": "string"}},
                "schemas": {"type": "array", "items": {"type": "string"}}, "staging_bucket": {"type": "string"},
                "staging_prefix": {"type": "string"}, "mode": {"type": "string", "enum": ["replace", "append"]},
                "create_missing": {"type": "boolean"}, "clean_staging": {"type": "boolean"},
                "verify_counts": {"type": "boolean"}, "allow_new_columns": {"type": "boolean"},
                "include_views": {"type": "boolean"}, "max_parallel": {"type": "integer", "minimum": 1,
                                                                       "maximum": 32},
                "kms_key_id": {"type": "string"}}),
            "/archives": _move("archive", "UNLOAD rows older than the retention to S3, then DELETE exactly those", {
                "warehouse": {"type": "string"}, "table": {"type": "string"}, "timestamp_column": {"type": "string"},
                "retention_days": {"type": "integer", "minimum": 1}, "bucket": {"type": "string"},
                "prefix": {"type": "string"}, "format": {"type": "string", "enum": ["csv", "parquet", "json"]},
                "compression": {"type": "string"}, "kms_key_id": {"type": "string"},
                "max_file_size_mb": {"type": "integer"}}),
            "/jobs/{job_id}/report": {"get": {
                "summary": "A copy run's report: every table with its status, rows and reason",
                "parameters": [_JOB_ID],
                "responses": {"200": _json({"type": "object", "required": ["run", "tables"]}, "the report"),
                              **_errors(404, 409)}}},
            "/followups/{name}": {"post": {
                "summary": "Run a DMS follow-up now",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"202": _json(job_ref, "the follow-up job"), **_errors(404)}}},
            "/jobs": {"get": {
                "summary": "Jobs, newest first, paged",
                "parameters": [
                    {"name": "pipeline", "in": "query", "schema": {"type": "string"}},
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": _STATUS}},
                    {"name": "since", "in": "query", "schema": {"type": "string"},
                     "description": "ISO-8601 time or epoch seconds"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                    {"name": "next_token", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object", "required": ["jobs"], "properties": {
                    "jobs": {"type": "array", "items": job_ref},
                    "next_token": {"type": "string", "nullable": True}}}, "a page of jobs"), **_errors(400)}}},
            "/jobs/{job_id}": {"get": {"summary": "One job", "parameters": [_JOB_ID],
                                       "responses": {"200": _json(job_ref, "the job"), **_errors(404)}}},
            "/jobs/{job_id}/retry": {"post": {"summary": "Run a FAILED or CANCELLED job again (a copy run: its failed tables)", "parameters": [_JOB_ID],
                                              "responses": {"202": _json(job_ref, "queued again"), **_errors(404, 409)}}},
            "/jobs/{job_id}/cancel": {"post": {"summary": "Cancel a queued job, or a running job's statement",
                                               "parameters": [_JOB_ID],
                                               "responses": {"202": _json(job_ref, "cancelling"), **_errors(404, 409)}}},
        },
    }
