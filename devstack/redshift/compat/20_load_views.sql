-- (No backslashes in literals here: the server runs with standard_conforming_strings=off.)
-- Load history and load errors that COPY fills (devstack/redshift/copy.py). Like Redshift's
-- system tables they are not transactional: COPY writes them on a side connection, so a
-- failed load's errors survive its rollback. Column sets follow Redshift; `error_detail`
-- (full reason, untruncated) is devstack's own, used by the SYS_ view below.

CREATE TABLE IF NOT EXISTS rs_compat.stl_load_errors (
    userid integer, slice integer, tbl integer, starttime timestamp, session integer, query integer,
    filename character(256), line_number bigint, colname character(127), type character(10),
    col_length character(10), position integer, raw_line character(1024), raw_field_value character(1024),
    err_code integer, err_reason character(100), is_partial integer, start_offset bigint,
    database_name text, table_name text, error_detail text
);

CREATE TABLE IF NOT EXISTS rs_compat.stl_load_commits (
    userid integer, query integer, slice integer, name character(256), filename character(256),
    byte_offset integer, lines_scanned integer, errors integer, status integer, curtime timestamp,
    file_format character(16), is_partial integer, start_offset bigint, copy_job_id bigint
);

CREATE TABLE IF NOT EXISTS rs_compat.sys_load_history (
    user_id integer, query_id bigint, status character(30), session_id integer, transaction_id bigint,
    database_name character(128), table_name character(136), start_time timestamp, end_time timestamp,
    duration bigint, data_source character(256), file_format character(16), loaded_rows bigint,
    loaded_bytes bigint, source_file_count integer, source_file_bytes bigint, file_count_scanned integer,
    file_bytes_scanned bigint, error_count bigint, copy_job_id bigint
);

CREATE OR REPLACE VIEW rs_compat.sys_load_error_detail AS
SELECT userid AS user_id, query::bigint AS query_id, NULL::bigint AS transaction_id, session AS session_id,
       database_name::character(128) AS database_name, tbl AS table_id, starttime AS start_time,
       filename AS file_name, line_number, colname AS column_name, type AS column_type,
       col_length AS column_length, position, err_code AS error_code,
       left(coalesce(error_detail, err_reason), 512)::character(512) AS error_message
FROM rs_compat.stl_load_errors;
