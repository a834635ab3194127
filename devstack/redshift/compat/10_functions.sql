-- Redshift functions and types that PostgreSQL 15 lacks, in schema rs_compat (on the search_path after
-- public). Installed by devstack/redshift/compat.py; every statement is idempotent.
-- Functions the rewriter already turns into PostgreSQL (NVL → coalesce, NVL2/DECODE → CASE, LEN → length)
-- exist here too, for SQL that reaches PostgreSQL another way (e.g. EXECUTE strings in procedures).

DO $$
BEGIN
    -- SUPER holds JSON; VARBYTE is bytea (no length limit: a domain takes no typmod).
    IF to_regtype('rs_compat.super') IS NULL THEN CREATE DOMAIN rs_compat.super AS jsonb; END IF;
    IF to_regtype('rs_compat.varbyte') IS NULL THEN CREATE DOMAIN rs_compat.varbyte AS bytea; END IF;
END
$$;

-- Statement start time in the session time zone, whole seconds, no time zone (Redshift GETDATE()).
CREATE OR REPLACE FUNCTION rs_compat.getdate() RETURNS timestamp
    LANGUAGE sql STABLE AS $$ SELECT date_trunc('second', statement_timestamp())::timestamp $$;

CREATE OR REPLACE FUNCTION rs_compat.nvl(a anycompatible, b anycompatible) RETURNS anycompatible
    LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(a, b) $$;
CREATE OR REPLACE FUNCTION rs_compat.nvl(a anycompatible, b anycompatible, c anycompatible) RETURNS anycompatible
    LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(a, b, c) $$;
CREATE OR REPLACE FUNCTION rs_compat.nvl2(a anyelement, b anycompatible, c anycompatible) RETURNS anycompatible
    LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN a IS NOT NULL THEN b ELSE c END $$;
CREATE OR REPLACE FUNCTION rs_compat.len(s text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT length(s) $$;
CREATE OR REPLACE FUNCTION rs_compat.charindex(sub text, s text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT strpos(s, sub) $$;
CREATE OR REPLACE FUNCTION rs_compat.replicate(s text, n integer) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT repeat(s, n) $$;
CREATE OR REPLACE FUNCTION rs_compat.strtol(s text, base integer) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    digits text := lower(btrim(s));
    negative boolean := false;
    result bigint := 0;
    d integer;
BEGIN
    IF left(digits, 1) IN ('-', '+') THEN
        negative := left(digits, 1) = '-';
        digits := substr(digits, 2);
    END IF;
    IF base = 16 AND left(digits, 2) = '0x' THEN digits := substr(digits, 3); END IF;
    FOR i IN 1 .. length(digits) LOOP
        d := strpos('0123456789abcdefghijklmnopqrstuvwxyz', substr(digits, i, 1)) - 1;
        IF d < 0 OR d >= base THEN RETURN NULL; END IF;  -- Redshift: invalid input gives NULL
        result := result * base + d;
    END LOOP;
    RETURN CASE WHEN negative THEN -result ELSE result END;
END
$$;
CREATE OR REPLACE FUNCTION rs_compat.from_hex(s text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT decode(s, 'hex') $$;
CREATE OR REPLACE FUNCTION rs_compat.to_hex(b bytea) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT encode(b, 'hex') $$;
CREATE OR REPLACE FUNCTION rs_compat.sha2(s text, bits integer) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT encode(CASE bits WHEN 224 THEN sha224(convert_to(s, 'UTF8')) WHEN 384 THEN sha384(convert_to(s, 'UTF8'))
                            WHEN 512 THEN sha512(convert_to(s, 'UTF8')) ELSE sha256(convert_to(s, 'UTF8')) END, 'hex') $$;
CREATE OR REPLACE FUNCTION rs_compat.dexp(x double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT exp(x) $$;
CREATE OR REPLACE FUNCTION rs_compat.dlog1(x double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT ln(x) $$;
CREATE OR REPLACE FUNCTION rs_compat.dlog10(x double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT log(x) $$;

-- Date parts: Redshift names and aliases → PostgreSQL's (the rewriter does the same for literals).
CREATE OR REPLACE FUNCTION rs_compat.date_part_name(p text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE
        WHEN q IN ('millennium', 'millennia', 'mil', 'mils') THEN 'millennium'
        WHEN q IN ('century', 'centuries', 'c', 'cent', 'cents') THEN 'century'
        WHEN q IN ('decade', 'decades', 'dec', 'decs') THEN 'decade'
        WHEN q IN ('year', 'years', 'y', 'yr', 'yrs') THEN 'year'
        WHEN q IN ('quarter', 'quarters', 'qtr', 'qtrs') THEN 'quarter'
        WHEN q IN ('month', 'months', 'mon', 'mons') THEN 'month'
        WHEN q IN ('week', 'weeks', 'w') THEN 'week'
        WHEN q IN ('dayofweek', 'dow', 'dw', 'weekday') THEN 'dow'
        WHEN q IN ('dayofyear', 'doy', 'dy', 'yearday') THEN 'doy'
        WHEN q IN ('day', 'days', 'd') THEN 'day'
        WHEN q IN ('hour', 'hours', 'h', 'hr', 'hrs') THEN 'hour'
        WHEN q IN ('minute', 'minutes', 'm', 'min', 'mins') THEN 'minute'
        WHEN q IN ('second', 'seconds', 's', 'sec', 'secs') THEN 'second'
        WHEN q IN ('millisecond', 'milliseconds', 'ms', 'msec', 'msecs', 'msecond', 'mseconds', 'millisec',
                   'millisecs', 'millisecon') THEN 'milliseconds'
        WHEN q IN ('microsecond', 'microseconds', 'microsec', 'microsecs', 'usecond', 'useconds', 'us', 'usec',
                   'usecs') THEN 'microseconds'
        ELSE q END
    FROM (SELECT lower(btrim(p)) AS q) AS s $$;

-- DATEADD: n whole units; month-like units clamp to the month end like Redshift (Jan 31 + 1 month = Feb 29).
CREATE OR REPLACE FUNCTION rs_compat.dateadd(part text, n bigint, ts timestamp) RETURNS timestamp
    LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    p text := rs_compat.date_part_name(part);
BEGIN
    RETURN ts + n * CASE p
        WHEN 'millennium' THEN interval '1000 years' WHEN 'century' THEN interval '100 years'
        WHEN 'decade' THEN interval '10 years' WHEN 'year' THEN interval '1 year'
        WHEN 'quarter' THEN interval '3 months' WHEN 'month' THEN interval '1 month'
        WHEN 'week' THEN interval '7 days' WHEN 'day' THEN interval '1 day'
        WHEN 'hour' THEN interval '1 hour' WHEN 'minute' THEN interval '1 minute'
        WHEN 'second' THEN interval '1 second' WHEN 'milliseconds' THEN interval '1 millisecond'
        WHEN 'microseconds' THEN interval '1 microsecond' END;
    -- an unknown part leaves the multiplier NULL:
END
$$;
CREATE OR REPLACE FUNCTION rs_compat.dateadd(part text, n bigint, ts timestamptz) RETURNS timestamptz
    LANGUAGE sql STABLE STRICT AS $$ SELECT rs_compat.dateadd(part, n, ts::timestamp)::timestamptz $$;
CREATE OR REPLACE FUNCTION rs_compat.dateadd(part text, n bigint, d date) RETURNS timestamp
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT rs_compat.dateadd(part, n, d::timestamp) $$;
CREATE OR REPLACE FUNCTION rs_compat.dateadd(part text, n bigint, t time) RETURNS time
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT (rs_compat.dateadd(part, n, '2000-01-01'::date + t))::time $$;
-- Unknown literals ('2024-01-31') pick the text overload (PostgreSQL prefers the string category): timestamp.
CREATE OR REPLACE FUNCTION rs_compat.dateadd(part text, n bigint, s text) RETURNS timestamp
    LANGUAGE sql STABLE STRICT AS $$ SELECT rs_compat.dateadd(part, n, s::timestamp) $$;

-- DATEDIFF counts boundaries crossed: DATEDIFF(hour, '00:00', '05:30') = 5, DATEDIFF(month, Jan 31, Feb 1) = 1.
-- Weeks start on Monday (PostgreSQL's date_trunc('week')).
CREATE OR REPLACE FUNCTION rs_compat.datediff(part text, a timestamp, b timestamp) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    p text := rs_compat.date_part_name(part);
    ya integer := extract(year FROM a);
    yb integer := extract(year FROM b);
BEGIN
    RETURN CASE p
        WHEN 'millennium' THEN div(yb - 1, 1000) - div(ya - 1, 1000)
        WHEN 'century' THEN div(yb - 1, 100) - div(ya - 1, 100)
        WHEN 'decade' THEN div(yb, 10) - div(ya, 10)
        WHEN 'year' THEN yb - ya
        WHEN 'quarter' THEN (yb * 4 + extract(quarter FROM b)) - (ya * 4 + extract(quarter FROM a))
        WHEN 'month' THEN (yb * 12 + extract(month FROM b)) - (ya * 12 + extract(month FROM a))
        WHEN 'week' THEN (date_trunc('week', b)::date - date_trunc('week', a)::date) / 7
        WHEN 'day' THEN b::date - a::date
        WHEN 'hour' THEN extract(epoch FROM date_trunc('hour', b) - date_trunc('hour', a))::bigint / 3600
        WHEN 'minute' THEN extract(epoch FROM date_trunc('minute', b) - date_trunc('minute', a))::bigint / 60
        WHEN 'second' THEN extract(epoch FROM date_trunc('second', b) - date_trunc('second', a))::bigint
        WHEN 'milliseconds' THEN (extract(epoch FROM date_trunc('milliseconds', b) - date_trunc('milliseconds', a))
                                  * 1000)::bigint
        WHEN 'microseconds' THEN (extract(epoch FROM b - a) * 1000000)::bigint
        END;
END
$$;
CREATE OR REPLACE FUNCTION rs_compat.datediff(part text, a timestamptz, b timestamptz) RETURNS bigint
    LANGUAGE sql STABLE STRICT AS $$ SELECT rs_compat.datediff(part, a::timestamp, b::timestamp) $$;
CREATE OR REPLACE FUNCTION rs_compat.datediff(part text, a time, b time) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT rs_compat.datediff(part, '2000-01-01'::date + a, '2000-01-01'::date + b) $$;
-- A literal may be a time of day ('05:30') as well as a timestamp.
CREATE OR REPLACE FUNCTION rs_compat._to_ts(s text) RETURNS timestamp
    LANGUAGE sql STABLE STRICT AS $$
    SELECT CASE WHEN s ~ '^[[:space:]]*[0-9]{1,2}:[0-9]{2}' THEN '2000-01-01'::date + s::time ELSE s::timestamp END $$;
CREATE OR REPLACE FUNCTION rs_compat.datediff(part text, a text, b text) RETURNS bigint
    LANGUAGE sql STABLE STRICT AS $$ SELECT rs_compat.datediff(part, rs_compat._to_ts(a), rs_compat._to_ts(b)) $$;

CREATE OR REPLACE FUNCTION rs_compat.datepart(part text, ts timestamp) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT date_part(rs_compat.date_part_name(part), ts) $$;
CREATE OR REPLACE FUNCTION rs_compat.datepart(part text, ts timestamptz) RETURNS double precision
    LANGUAGE sql STABLE STRICT AS $$ SELECT date_part(rs_compat.date_part_name(part), ts) $$;
CREATE OR REPLACE FUNCTION rs_compat.datepart(part text, t time) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT date_part(rs_compat.date_part_name(part), t) $$;
CREATE OR REPLACE FUNCTION rs_compat.datepart(part text, i interval) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT date_part(rs_compat.date_part_name(part), i) $$;
CREATE OR REPLACE FUNCTION rs_compat.datepart(part text, s text) RETURNS double precision
    LANGUAGE sql STABLE STRICT AS $$ SELECT rs_compat.datepart(part, s::timestamp) $$;

-- TRUNC(timestamp) → date (numeric trunc() stays PostgreSQL's).
CREATE OR REPLACE FUNCTION rs_compat.trunc(ts timestamp) RETURNS date
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT ts::date $$;
CREATE OR REPLACE FUNCTION rs_compat.trunc(ts timestamptz) RETURNS date
    LANGUAGE sql STABLE STRICT AS $$ SELECT ts::date $$;
CREATE OR REPLACE FUNCTION rs_compat.last_day(d timestamp) RETURNS date
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT (date_trunc('month', d) + interval '1 month - 1 day')::date $$;
CREATE OR REPLACE FUNCTION rs_compat.date_cmp(a date, b date) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT CASE WHEN a < b THEN -1 WHEN a > b THEN 1 ELSE 0 END $$;

-- CONVERT_TIMEZONE([source,] target, ts): the 2-argument form converts from UTC.
CREATE OR REPLACE FUNCTION rs_compat.convert_timezone(source text, target text, ts timestamp) RETURNS timestamp
    LANGUAGE sql STABLE STRICT AS $$ SELECT (ts AT TIME ZONE source) AT TIME ZONE target $$;
CREATE OR REPLACE FUNCTION rs_compat.convert_timezone(source text, target text, ts text) RETURNS timestamp
    LANGUAGE sql STABLE STRICT AS $$ SELECT rs_compat.convert_timezone(source, target, ts::timestamp) $$;
CREATE OR REPLACE FUNCTION rs_compat.convert_timezone(target text, ts timestamp) RETURNS timestamp
    LANGUAGE sql STABLE STRICT AS $$ SELECT (ts AT TIME ZONE 'UTC') AT TIME ZONE target $$;
CREATE OR REPLACE FUNCTION rs_compat.convert_timezone(target text, ts timestamptz) RETURNS timestamp
    LANGUAGE sql STABLE STRICT AS $$ SELECT ts AT TIME ZONE target $$;
CREATE OR REPLACE FUNCTION rs_compat.convert_timezone(target text, ts text) RETURNS timestamp
    LANGUAGE sql STABLE STRICT AS $$ SELECT rs_compat.convert_timezone(target, ts::timestamp) $$;

-- ADD_MONTHS: a month-end stays a month-end (Feb 29 + 1 month = Mar 31), unlike DATEADD.
CREATE OR REPLACE FUNCTION rs_compat.add_months(ts timestamp, n bigint) RETURNS timestamp
    LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN ts::date = rs_compat.last_day(ts)
                THEN rs_compat.last_day(ts + n * interval '1 month') + ts::time
                ELSE ts + n * interval '1 month' END $$;
CREATE OR REPLACE FUNCTION rs_compat.add_months(d date, n bigint) RETURNS timestamp
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT rs_compat.add_months(d::timestamp, n) $$;
CREATE OR REPLACE FUNCTION rs_compat.add_months(ts timestamptz, n bigint) RETURNS timestamp
    LANGUAGE sql STABLE STRICT AS $$ SELECT rs_compat.add_months(ts::timestamp, n) $$;
CREATE OR REPLACE FUNCTION rs_compat.add_months(s text, n bigint) RETURNS timestamp
    LANGUAGE sql STABLE STRICT AS $$ SELECT rs_compat.add_months(s::timestamp, n) $$;

-- MONTHS_BETWEEN: whole months when the days match or both are month-ends, else a fraction of 31 days.
CREATE OR REPLACE FUNCTION rs_compat.months_between(a date, b date) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT ((extract(year FROM a) * 12 + extract(month FROM a)) - (extract(year FROM b) * 12 + extract(month FROM b))
            + CASE WHEN extract(day FROM a) = extract(day FROM b)
                     OR (a = rs_compat.last_day(a) AND b = rs_compat.last_day(b)) THEN 0
                   ELSE (extract(day FROM a) - extract(day FROM b)) / 31.0 END)::double precision $$;
CREATE OR REPLACE FUNCTION rs_compat.months_between(a text, b text) RETURNS double precision
    LANGUAGE sql STABLE STRICT AS $$ SELECT rs_compat.months_between(a::date, b::date) $$;

-- MEDIAN as a plain aggregate (so it also works as a window function): percentile_cont(0.5).
CREATE OR REPLACE FUNCTION rs_compat._median_final(vals double precision[]) RETURNS double precision
    LANGUAGE sql IMMUTABLE AS $$
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM unnest(vals) AS v $$;
CREATE OR REPLACE FUNCTION rs_compat._median_final(vals numeric[]) RETURNS numeric
    LANGUAGE sql IMMUTABLE AS $$
    SELECT (percentile_cont(0.5) WITHIN GROUP (ORDER BY v::double precision))::numeric
    FROM unnest(vals) AS v $$;
DO $$
BEGIN
    IF to_regprocedure('rs_compat.median(double precision)') IS NULL THEN
        CREATE AGGREGATE rs_compat.median(double precision) (
            SFUNC = array_append, STYPE = double precision[], FINALFUNC = rs_compat._median_final);
    END IF;
    IF to_regprocedure('rs_compat.median(numeric)') IS NULL THEN
        CREATE AGGREGATE rs_compat.median(numeric) (
            SFUNC = array_append, STYPE = numeric[], FINALFUNC = rs_compat._median_final);
    END IF;
END
$$;

-- LISTAGG(DISTINCT ...): the rewriter aggregates in the requested order and keeps first occurrences.
CREATE OR REPLACE FUNCTION rs_compat.array_distinct(a anyarray) RETURNS anyarray
    LANGUAGE sql IMMUTABLE AS $$
    SELECT array_agg(v ORDER BY first_seen) FROM (
        SELECT v, min(o) AS first_seen FROM unnest(a) WITH ORDINALITY AS u(v, o) WHERE v IS NOT NULL GROUP BY v
    ) AS d $$;

-- Redshift regexp functions: REGEXP_REPLACE replaces every match; `parameters` is c/i/e/p.
CREATE OR REPLACE FUNCTION rs_compat._re_flags(params text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$ SELECT translate(coalesce(params, ''), 'pe', '') $$;
CREATE OR REPLACE FUNCTION rs_compat.rs_regexp_replace(s text, pattern text, replacement text DEFAULT '',
                                                       pos integer DEFAULT 1, params text DEFAULT '') RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT left(s, pos - 1) || regexp_replace(substr(s, pos), pattern, replacement, 'g' || rs_compat._re_flags(params)) $$;
CREATE OR REPLACE FUNCTION rs_compat.rs_regexp_substr(s text, pattern text, pos integer DEFAULT 1,
                                                      occurrence integer DEFAULT 1, params text DEFAULT '') RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_substr(s, pattern, pos, occurrence, rs_compat._re_flags(params),
                         CASE WHEN strpos(coalesce(params, ''), 'e') > 0 THEN 1 ELSE 0 END) $$;
CREATE OR REPLACE FUNCTION rs_compat.rs_regexp_instr(s text, pattern text, pos integer DEFAULT 1,
                                                     occurrence integer DEFAULT 1, endoption integer DEFAULT 0,
                                                     params text DEFAULT '') RETURNS integer
    LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_instr(s, pattern, pos, occurrence, endoption, rs_compat._re_flags(params),
                        CASE WHEN strpos(coalesce(params, ''), 'e') > 0 THEN 1 ELSE 0 END) $$;
CREATE OR REPLACE FUNCTION rs_compat.rs_regexp_count(s text, pattern text, pos integer DEFAULT 1,
                                                     params text DEFAULT '') RETURNS integer
    LANGUAGE sql IMMUTABLE AS $$ SELECT regexp_count(s, pattern, pos, rs_compat._re_flags(params)) $$;

-- JSON functions take VARCHAR in Redshift (PostgreSQL's take json).
CREATE OR REPLACE FUNCTION rs_compat.json_extract_path_text(j text, VARIADIC path text[]) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT j::json #>> path $$;
CREATE OR REPLACE FUNCTION rs_compat.json_extract_array_element_text(j text, pos integer) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT j::json ->> pos $$;
CREATE OR REPLACE FUNCTION rs_compat.json_array_length(j text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT json_array_length(j::json) $$;
CREATE OR REPLACE FUNCTION rs_compat.is_valid_json(j text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    PERFORM j::json;
    RETURN true;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN false;
END
$$;
CREATE OR REPLACE FUNCTION rs_compat.is_valid_json_array(j text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT rs_compat.is_valid_json(j) AND json_typeof(j::json) = 'array' $$;
CREATE OR REPLACE FUNCTION rs_compat.json_parse(j text) RETURNS rs_compat.super
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT j::jsonb $$;
CREATE OR REPLACE FUNCTION rs_compat.json_serialize(j jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT j::text $$;

-- COPY bookkeeping: the COPY handler stores these per connection with set_config(..., false).
CREATE OR REPLACE FUNCTION rs_compat.pg_last_copy_count() RETURNS bigint
    LANGUAGE sql STABLE AS $$ SELECT coalesce(nullif(current_setting('rs.last_copy_count', true), ''), '0')::bigint $$;
CREATE OR REPLACE FUNCTION rs_compat.pg_last_copy_id() RETURNS bigint
    LANGUAGE sql STABLE AS $$ SELECT coalesce(nullif(current_setting('rs.last_copy_id', true), ''), '-1')::bigint $$;

-- ALTER TABLE target APPEND FROM source [IGNOREEXTRA | FILLTARGET]: move rows by column name, empty the source.
CREATE OR REPLACE PROCEDURE rs_compat.append_from(target text, source text, mode text DEFAULT '')
    LANGUAGE plpgsql AS $$
DECLARE
    t regclass := target::regclass;
    s regclass := source::regclass;
    common text;
    extra_source text;
    extra_target text;
BEGIN
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO common
    FROM pg_attribute a
    WHERE a.attrelid = t AND a.attnum > 0 AND NOT a.attisdropped
      AND EXISTS (SELECT 1 FROM pg_attribute b WHERE b.attrelid = s AND b.attname = a.attname
                  AND b.attnum > 0 AND NOT b.attisdropped);
    SELECT string_agg(b.attname, ', ') INTO extra_source FROM pg_attribute b
    WHERE b.attrelid = s AND b.attnum > 0 AND NOT b.attisdropped
      AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t AND a.attname = b.attname
                      AND a.attnum > 0 AND NOT a.attisdropped);
    SELECT string_agg(a.attname, ', ') INTO extra_target FROM pg_attribute a
    WHERE a.attrelid = t AND a.attnum > 0 AND NOT a.attisdropped
      AND NOT EXISTS (SELECT 1 FROM pg_attribute b WHERE b.attrelid = s AND b.attname = a.attname
                      AND b.attnum > 0 AND NOT b.attisdropped);
    IF extra_source IS NOT NULL AND lower(mode) <> 'ignoreextra' THEN
        RAISE EXCEPTION 'Source table has columns the target lacks (%): use IGNOREEXTRA', extra_source;
    END IF;
    IF extra_target IS NOT NULL AND lower(mode) <> 'filltarget' THEN
        RAISE EXCEPTION 'Target table has columns the source lacks (%): use FILLTARGET', extra_target;
    END IF;
    EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM %s', t, common, common, s);
    EXECUTE format('TRUNCATE %s', s);
END
$$;
