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
-- DMS lands full-load copies of the source tables in dbo.stg_*; the follow-up builds the
-- customer dimension first, then the fact table that joins it.
CREATE TABLE IF NOT EXISTS dbo.stg_customers (cust_id INTEGER, cust_name VARCHAR(100), region VARCHAR(20));
CREATE TABLE IF NOT EXISTS dbo.stg_sales (sale_id BIGINT, cust_id INTEGER, sold_on DATE, qty INTEGER, price DECIMAL(10,2));
CREATE TABLE IF NOT EXISTS dbo.dim_customer (
    customer_key BIGINT IDENTITY(1,1),
    cust_id      INTEGER NOT NULL,
    cust_name    VARCHAR(100),
    region       VARCHAR(20),
    loaded_at    TIMESTAMP DEFAULT GETDATE()
) DISTSTYLE ALL SORTKEY(cust_id);
CREATE TABLE IF NOT EXISTS dbo.fact_sales (
    sale_id      BIGINT NOT NULL,
    customer_key BIGINT NOT NULL,
    sold_on      DATE,
    revenue      DECIMAL(12,2)
) DISTKEY(customer_key) SORTKEY(sold_on);
CREATE OR REPLACE PROCEDURE dbo.sp_load_cust_dim()
AS $$
BEGIN
    DELETE FROM dbo.dim_customer;
    INSERT INTO dbo.dim_customer (cust_id, cust_name, region)
    SELECT cust_id, NVL(cust_name, 'unknown'), UPPER(region) FROM dbo.stg_customers;
    RAISE INFO 'dim_customer rebuilt';
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE PROCEDURE dbo.sp_load_fact_sales()
AS $$
BEGIN
    DELETE FROM dbo.fact_sales;
    INSERT INTO dbo.fact_sales (sale_id, customer_key, sold_on, revenue)
    SELECT s.sale_id, d.customer_key, s.sold_on, s.qty * s.price
    FROM dbo.stg_sales s JOIN dbo.dim_customer d ON d.cust_id = s.cust_id;
END;
$$ LANGUAGE plpgsql;
