"""Run by test_libsql_rust.py in a subprocess: the ``libsql`` binding blocks while holding
the GIL, so it must never share a process with the server it talks to.

Usage: python libsql_script.py <http url>; prints one JSON object with what it saw.
"""

from __future__ import annotations

import json
import sys

import libsql

BIG = 2**62 + 3


def main(url: str) -> None:
    out: dict[str, object] = {}
    conn = libsql.connect(url)
    conn.execute("CREATE TABLE r(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, f REAL, z BLOB)")
    conn.execute("INSERT INTO r(a, b, f, z) VALUES (?, ?, ?, ?)", (1, "x", 0.5, b"\x00\xff"))
    conn.executemany("INSERT INTO r(a, b) VALUES (?, ?)", [(2, "y"), (3, "z")])
    # libsql 0.1.11 sends ints beyond 32 bits as floats: big integers go in the SQL text.
    conn.execute(f"INSERT INTO r(a, b) VALUES ({BIG}, 'big')")
    conn.commit()
    cur = conn.execute("SELECT a, b, f, z FROM r ORDER BY id")
    rows = cur.fetchall()
    out["rows"] = [[a, b, f, z.hex() if isinstance(z, bytes) else z] for a, b, f, z in rows]
    out["description"] = [d[0] for d in cur.description]
    out["big"] = conn.execute("SELECT a FROM r WHERE b = 'big'").fetchone()[0]

    # A transaction: rolled back, then committed.
    conn.execute("INSERT INTO r(a, b) VALUES (10, 'rolled back')")
    conn.rollback()
    conn.execute("INSERT INTO r(a, b) VALUES (11, 'committed')")
    conn.execute("UPDATE r SET a = a + 1 WHERE b = 'committed'")
    conn.commit()
    out["after_tx"] = conn.execute(
        "SELECT a, b FROM r WHERE a BETWEEN 10 AND 20 ORDER BY a"
    ).fetchall()
    # DDL and DML in one explicit transaction: the client describes each statement first,
    # and the table exists only inside the transaction.
    conn.execute("BEGIN")
    conn.execute("CREATE TABLE q(x INTEGER, y TEXT)")
    conn.execute("INSERT INTO q VALUES (?, ?)", (1, "in-tx"))
    cur = conn.execute("SELECT x, y FROM q")
    out["in_tx"] = [cur.fetchall(), [d[0] for d in cur.description]]
    conn.commit()
    try:
        conn.execute("SELECT * FROM no_such_table")
        out["error"] = None
    except Exception as exc:
        out["error"] = str(exc)
    conn.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
