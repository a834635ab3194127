"""UNLOAD's output files: one `PartWriter` per folder (the prefix, or a PARTITION BY folder)
rolls parts at MAXFILESIZE, names them as Redshift does and streams each into S3
(`unloadsink.ObjectStream`); `Destination` holds the writers and writes the manifest.

Names follow Redshift: `<prefix>0000_part_00` (PARALLEL ON, one slice here), `<prefix>000`
(PARALLEL OFF), `.gz`/`.bz2`/`.zst`/`.parquet`, `<prefix>manifest`, Hive `col=value/` folders.
"""

from __future__ import annotations

import json
from typing import Any

from devstack.redshift.contracts import RedshiftError
from devstack.redshift.unloadformat import OutColumn, arrow_schema, format_row, header_line, schema_type
from devstack.redshift.unloadopts import UnloadSpec
from devstack.redshift.unloadsink import ObjectStream, Written

BLOCK = 1024 * 1024                  # text read from PostgreSQL per block
CSV_BLOCK = 8 * 1024 * 1024          # CSV parsed into Arrow at a time (Parquet)
DEFAULT_ROW_GROUP = 32 * 1024 * 1024  # Redshift's Parquet row group: 32 MB unless ROWGROUPSIZE
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_HIVE_SPECIAL = set('"#%\'*/:=?\\{[]^')
NOT_EMPTY = ("ERROR: Specified unload destination on S3 is not empty. Consider using a different bucket / prefix, "
             "manually removing the target files in S3, or using the ALLOWOVERWRITE option.")


def partition_folder(names: list[str], values: list[str | None]) -> str:
    return "".join(f"{name}={hive_escape(value)}/" for name, value in zip(names, values))


def hive_escape(value: str | None) -> str:
    """Hive's path escaping (FileUtils.escapePathName): %XX for control characters and "#%'*/:=?\\{[]^."""
    if value is None:
        return HIVE_NULL
    return "".join(f"%{ord(c):02X}" if c in _HIVE_SPECIAL or ord(c) < 0x20 or c == "\x7f" else c for c in value)


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    try:
        return [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for o in page.get("Contents", [])]
    except Exception as exc:
        code = str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            raise RedshiftError(f"ERROR: S3ServiceException:The specified bucket does not exist, Bucket '{bucket}'") \
                from None
        raise


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})


def prepare_destination(s3: Any, bucket: str, prefix: str, spec: UnloadSpec) -> None:
    if spec.allow_overwrite:
        return
    existing = list_keys(s3, bucket, prefix)
    if not existing:
        return
    if not spec.clean_path:
        raise RedshiftError(NOT_EMPTY)
    if not spec.partition_by:  # with PARTITION BY, CLEANPATH empties only the folders written to
        delete_keys(s3, bucket, existing)


class Destination:
    """The writers of one UNLOAD, one per folder, and everything it has stored (`written`)."""

    def __init__(self, s3: Any, bucket: str, prefix: str, spec: UnloadSpec, columns: list[OutColumn]) -> None:
        self.s3, self.bucket, self.prefix, self.spec, self.columns = s3, bucket, prefix, spec, columns
        self.written = Written(s3, bucket)
        self.writers: dict[str, PartWriter] = {}
        self.extra: dict[str, Any] = {}
        if spec.kms_key_id:
            self.extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": spec.kms_key_id}
        elif spec.encrypted:
            self.extra = {"ServerSideEncryption": "AES256"}

    def writer(self, folder: str) -> PartWriter:
        writer = self.writers.get(folder)
        if writer is None:
            if folder and self.spec.clean_path:
                delete_keys(self.s3, self.bucket, list_keys(self.s3, self.bucket, self.prefix + folder))
            writer = self.writers[folder] = PartWriter(self, self.prefix + folder)
        return writer

    def close(self, empty_file: bool) -> list[dict[str, Any]]:
        if empty_file and not self.writers:
            self.writer("")
        entries: list[dict[str, Any]] = []
        for writer in self.writers.values():
            entries += writer.close()
        return entries

    def write_manifest(self, entries: list[dict[str, Any]], rows: int) -> None:
        if self.spec.verbose:
            body: dict[str, Any] = {
                "entries": entries,
                "schema": {"elements": [{"name": c.name, "type": schema_type(c)} for c in self.columns]},
                "meta": {"content_length": sum(e["meta"]["content_length"] for e in entries), "record_count": rows},
                "author": {"name": "Amazon Redshift", "version": "1.0.0"},
            }
        else:
            body = {"entries": [{"url": e["url"]} for e in entries]}
        stream = ObjectStream(self.written, f"{self.prefix}manifest", self.extra, None)
        stream.write(json.dumps(body, indent=1).encode())
        stream.close()


class PartWriter:
    """Writes one folder's parts, rolling over at MAXFILESIZE; a part is opened on first write.

    Text formats take formatted blocks (`add_block`, cut by the reader to fit `room`) or rows
    (`add_row`); Parquet takes CSV blocks, parsed by pyarrow into row groups of ROWGROUPSIZE."""

    def __init__(self, dest: Destination, prefix: str) -> None:
        self.dest, self.spec, self.prefix = dest, dest.spec, prefix
        self.part = 0
        self.entries: list[dict[str, Any]] = []
        self.stream: ObjectStream | None = None
        self.records = 0
        self.parquet = self.spec.fmt == "PARQUET"
        self._groups: list[Any] = []   # Arrow tables waiting to fill a row group
        self._group_bytes = 0
        self._parquet_writer: Any = None

    @property
    def room(self) -> int:
        """How many bytes the next block may have: what is left of MAXFILESIZE in this part
        (text formats; at least one byte), or one CSV block for Parquet."""
        if self.parquet:
            return CSV_BLOCK
        used = self.stream.size if self.stream is not None else 0
        return max(1, min(BLOCK, self.spec.max_file_size - used))

    def fits(self, size: int) -> bool:
        """Does a row of `size` bytes still fit in the open part? (Parquet rolls by itself.)"""
        return self.parquet or self.stream is None or self.stream.size + size <= self.spec.max_file_size

    def _open(self) -> None:
        self.stream = ObjectStream(self.dest.written, self._name(), self.dest.extra,
                                   None if self.parquet else self.spec.compression)
        self.records = 0
        if self.spec.header and self.spec.fmt in ("CSV", "TEXT"):
            self.stream.write((header_line([c.name for c in self.dest.columns], self.spec) + "\n").encode())

    def add_block(self, data: Any, rows: int) -> None:
        """Whole rows, already in the output format (CSV for Parquet)."""
        if not rows:
            return
        if self.stream is None:
            self._open()
        assert self.stream is not None
        self.records += rows  # before a Parquet row group may roll the part: these rows are in it
        if self.parquet:
            self._parquet_rows(data)
        else:
            self.stream.write(data)

    def add_row(self, values: list[str | None]) -> None:
        """One row of values, formatted here (TEXT, CSV, FIXEDWIDTH)."""
        line = (format_row(values, self.spec) + "\n").encode()
        if not self.fits(len(line)) and self.records:
            self.end_part()
        self.add_block(line, 1)

    def end_part(self) -> None:
        """Store the open part (if any); the next row starts the next part number."""
        if self.stream is None:
            return
        if self.parquet:
            self._flush_group(force=True)
            if self._parquet_writer is None:  # no rows: still a valid (empty) Parquet file
                self._parquet_writer = self._new_parquet_writer()
            self._parquet_writer.close()
            self._parquet_writer = None
        stored = self.stream.close()
        self.entries.append({"url": f"s3://{self.dest.bucket}/{self.stream.key}",
                             "meta": {"content_length": stored, "record_count": self.records}})
        self.stream = None
        self.part += 1

    def close(self) -> list[dict[str, Any]]:
        if self.stream is None and not self.entries:
            self._open()  # an empty result still gets its (empty) file
        self.end_part()
        return self.entries

    def _name(self) -> str:
        base = f"{self.prefix}{self.part:03d}" if not self.spec.parallel else f"{self.prefix}0000_part_{self.part:02d}"
        if self.parquet:
            return base + (f".{self.spec.extension}" if self.spec.extension else ".parquet")
        suffix = {"GZIP": ".gz", "BZIP2": ".bz2", "ZSTD": ".zst"}.get(self.spec.compression or "", "")
        return base + (f".{self.spec.extension}" if self.spec.extension else "") + suffix

    # --- Parquet -----------------------------------------------------------------------

    def _parquet_rows(self, csv_block: Any) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        schema = arrow_schema(self.dest.columns)
        fields = [f"_c{i}" for i in range(len(schema))]  # the query may repeat a name
        # Each block is whole rows, so it parses on its own; parsing block by block (not pyarrow's
        # streaming reader, which reads ahead) bounds memory.
        try:
            table = pacsv.read_csv(
                pa.py_buffer(csv_block), read_options=pacsv.ReadOptions(column_names=fields),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict(zip(fields, schema.types)), true_values=["t"], false_values=["f"],
                    null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False))
        except pa.ArrowInvalid as exc:
            raise RedshiftError(f"ERROR: cannot write the query's result as Parquet: {exc}") from None
        self._groups.append(table.rename_columns(schema.names).cast(schema))
        self._group_bytes += table.nbytes
        self._flush_group(force=False)

    def _flush_group(self, force: bool) -> None:
        """Write the waiting rows as one row group once they reach ROWGROUPSIZE (Arrow's
        in-memory size: the uncompressed data)."""
        limit = self.spec.row_group_size or DEFAULT_ROW_GROUP
        if not self._groups or (self._group_bytes < limit and not force):
            return
        import pyarrow as pa

        table = pa.concat_tables(self._groups)
        self._groups, self._group_bytes = [], 0
        if self._parquet_writer is None:
            self._parquet_writer = self._new_parquet_writer()
        self._parquet_writer.write_table(table, row_group_size=max(1, table.num_rows))
        assert self.stream is not None
        if not force and self.stream.size >= self.spec.max_file_size:
            self.end_part()

    def _new_parquet_writer(self) -> Any:
        import pyarrow.parquet as pq

        return pq.ParquetWriter(self.stream, arrow_schema(self.dest.columns), compression="snappy")
