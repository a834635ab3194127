CREATE SCHEMA IF NOT EXISTS it;
CREATE TABLE it.append_rows (id INTEGER NOT NULL, name VARCHAR(50), amount DECIMAL(10,2)) DISTSTYLE EVEN;
CREATE TABLE it.row_counts (counted BIGINT, at TIMESTAMP);
CREATE TABLE it.gz_rows (id INTEGER NOT NULL, name VARCHAR(50), amount DECIMAL(10,2));
CREATE TABLE it.snapshot (id INTEGER, label VARCHAR(20));
CREATE TABLE it.customers (id INTEGER NOT NULL, name VARCHAR(50), tier VARCHAR(10), seq BIGINT IDENTITY(1,1), loaded_at TIMESTAMP DEFAULT GETDATE()) SORTKEY(id);
CREATE TABLE it.slow_a (id INTEGER, started_at TIMESTAMP DEFAULT GETDATE());
CREATE TABLE it.slow_b (id INTEGER, started_at TIMESTAMP DEFAULT GETDATE());
CREATE TABLE it.naps (tbl VARCHAR(10), started_at TIMESTAMP, ended_at TIMESTAMP);
CREATE OR REPLACE PROCEDURE it.count_rows() AS $$
BEGIN
  INSERT INTO it.row_counts SELECT COUNT(*), GETDATE() FROM it.append_rows;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE PROCEDURE it.nap(seconds INTEGER) AS $$
BEGIN
  PERFORM pg_sleep(seconds);
END;
$$ LANGUAGE plpgsql;
CREATE TABLE it.stg_customer (id INTEGER, name VARCHAR(40));
CREATE TABLE it.stg_sale (id INTEGER, customer_id INTEGER, amount DECIMAL(10,2));
CREATE TABLE it.dim_customer (customer_key INTEGER IDENTITY(1,1), id INTEGER, name VARCHAR(40));
CREATE TABLE it.fact_sale (id INTEGER, customer_key INTEGER, amount DECIMAL(10,2));
CREATE TABLE it.steps (name VARCHAR(10), at TIMESTAMP DEFAULT GETDATE(), xid BIGINT);
CREATE OR REPLACE PROCEDURE it.load_dim() AS $$
BEGIN
  DELETE FROM it.dim_customer;
  INSERT INTO it.dim_customer (id, name) SELECT id, NVL(name, 'n/a') FROM it.stg_customer;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE PROCEDURE it.load_fact() AS $$
BEGIN
  DELETE FROM it.fact_sale;
  INSERT INTO it.fact_sale SELECT s.id, d.customer_key, s.amount FROM it.stg_sale s JOIN it.dim_customer d ON d.id = s.customer_id;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE PROCEDURE it.step_log(step VARCHAR) AS $$
BEGIN
  INSERT INTO it.steps (name, xid) VALUES (step, txid_current());
END;
$$ LANGUAGE plpgsql;
