#!/usr/bin/env python3
"""Per-column storage size of TPC-H tables in DuckDB, as a reference for lightning-compress.

    pip install duckdb==2.0.1
    cargo run --release -p lightning-compress --example tpch-tbl -- /tmp/tpch
    python3 scripts/duckdb-columns.py /tmp/tpch benchmark_results/<date>/duckdb-columns.json

Each column is copied alone into a fresh DuckDB database file, checkpointed, and measured as
used blocks x block size (DuckDB's own compression picks the encoding); the whole table the
same way. Sizes in MB (10^6 bytes). Compare with the `tpch` bench of lightning-compress
(`benchmark_results/<date>/tpch.json`).
"""
import json
import os
import sys
import tempfile

import duckdb

TABLES = {
    "lineitem": [
        ("l_orderkey", "BIGINT"), ("l_partkey", "BIGINT"), ("l_suppkey", "BIGINT"),
        ("l_linenumber", "BIGINT"), ("l_quantity", "DECIMAL(15,2)"),
        ("l_extendedprice", "DECIMAL(15,2)"), ("l_discount", "DECIMAL(15,2)"),
        ("l_tax", "DECIMAL(15,2)"), ("l_returnflag", "VARCHAR"), ("l_linestatus", "VARCHAR"),
        ("l_shipdate", "DATE"), ("l_commitdate", "DATE"), ("l_receiptdate", "DATE"),
        ("l_shipinstruct", "VARCHAR"), ("l_shipmode", "VARCHAR"), ("l_comment", "VARCHAR"),
    ],
    "orders": [
        ("o_orderkey", "BIGINT"), ("o_custkey", "BIGINT"), ("o_orderstatus", "VARCHAR"),
        ("o_totalprice", "DECIMAL(15,2)"), ("o_orderdate", "DATE"),
        ("o_orderpriority", "VARCHAR"), ("o_clerk", "VARCHAR"), ("o_shippriority", "INTEGER"),
        ("o_comment", "VARCHAR"),
    ],
}


def size_of(tmp, name, source_con, select):
    path = os.path.join(tmp, f"{name}.duckdb")
    source_con.execute(f"ATTACH '{path}' AS m")
    source_con.execute(f"CREATE TABLE m.t AS {select}")
    source_con.execute("CHECKPOINT m")
    row = source_con.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = 'm'"
    ).fetchone()
    source_con.execute("DETACH m")
    os.remove(path)
    return row[0] * row[1] / 1e6


def main():
    src = sys.argv[1]
    out = {}
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        for table, cols in TABLES.items():
            spec = ", ".join(f"'{c}': '{t}'" for c, t in cols)
            con.execute(
                f"CREATE TABLE {table} AS SELECT * FROM read_csv('{src}/{table}.tbl', "
                f"delim='|', header=false, columns={{{spec}}})"
            )
            sizes = {"whole": size_of(tmp, table, con, f"SELECT * FROM {table}")}
            for c, _ in cols:
                sizes[c] = size_of(tmp, c, con, f"SELECT {c} FROM {table}")
            out[table] = sizes
            for k, v in sizes.items():
                print(f"{table}.{k}: {v:.2f} MB", flush=True)
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            json.dump({"duckdb": duckdb.__version__, "sizes_mb": out}, f, indent=2)


if __name__ == "__main__":
    main()
