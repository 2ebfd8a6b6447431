"""Run by test_cursor_streaming.py in a subprocess (the ``libsql`` binding blocks holding the
GIL): a 10,000-row query read through ``/v3/cursor`` by the real Rust-based client.

Usage: python libsql_cursor_script.py <http url>; prints one JSON object with what it saw.
"""

from __future__ import annotations

import json
import sys

import libsql

ROWS = 10_000


def main(url: str) -> None:
    conn = libsql.connect(url)
    conn.execute("CREATE TABLE big(i INTEGER PRIMARY KEY, s TEXT, b BLOB)")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO big SELECT i, printf('row-%05d', i), zeroblob(i % 7) FROM n",
        (ROWS,),
    )
    conn.commit()
    cur = conn.execute("SELECT i, s, b FROM big ORDER BY i")
    rows = cur.fetchall()
    print(
        json.dumps(
            {
                "count": len(rows),
                "first": [rows[0][0], rows[0][1], len(rows[0][2])],
                "last": [rows[-1][0], rows[-1][1], len(rows[-1][2])],
                "sum": sum(r[0] for r in rows),
                "description": [d[0] for d in cur.description],
            }
        )
    )
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1])
