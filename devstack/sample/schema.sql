-- Target tables and post-load procedures of the demo catalog (chalicelib/pipelines.toml).
-- Written in Redshift SQL: devstack's emulator runs it on PostgreSQL.
CREATE SCHEMA IF NOT EXISTS sales;
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE SCHEMA IF NOT EXISTS dbo;
CREATE TABLE IF NOT EXISTS sales.orders (
    order_id    BIGINT        NOT NULL ENCODE az64,
    customer_id INTEGER       NOT NULL,
    amount      DECIMAL(12,2) NOT NULL,
    status      VARCHAR(20)   NOT NULL ENCODE lzo,
    ordered_at  TIMESTAMP     NOT NULL,
    loaded_at   TIMESTAMP     DEFAULT GETDATE()
) DISTKEY(customer_id) COMPOUND SORTKEY(ordered_at);
CREATE TABLE IF NOT EXISTS sales.customers (
    customer_id INTEGER NOT NULL,
    name        VARCHAR(100),
    country     CHAR(2),
    segment     VARCHAR(20)
) DISTSTYLE ALL;
CREATE TABLE IF NOT EXISTS analytics.events (
    event_id    VARCHAR(36) NOT NULL,
    user_id     INTEGER,
    event_type  VARCHAR(32),
    occurred_at TIMESTAMP,
    properties  VARCHAR(MAX)
) SORTKEY AUTO;
CREATE TABLE IF NOT EXISTS sales.order_stats (
    status       VARCHAR(20),
    orders       BIGINT,
    revenue      DECIMAL(14,2),
    refreshed_at TIMESTAMP
) BACKUP NO;
-- Runs inside the load's transaction, so it uses DELETE (TRUNCATE would commit).
CREATE OR REPLACE PROCEDURE sales.refresh_order_stats()
AS $$
BEGIN
    DELETE FROM sales.order_stats;
    INSERT INTO sales.order_stats
    SELECT status, COUNT(*), SUM(amount), GETDATE() FROM sales.orders GROUP BY status;
END;
$$ LANGUAGE plpgsql;
