import asyncio
import libsql_client
import libsql

async def test_py(server):
    for url in (server.url, server.ws_url):
        async with libsql_client.create_client(url) as c:
            await c.execute("CREATE TABLE IF NOT EXISTS p(a, b)")
            r = await c.execute("INSERT INTO p VALUES (?, ?)", [2**62+3, b"\x00\x01"])
            print(url, r.rows_affected, r.last_insert_rowid)
            r = await c.execute("SELECT * FROM p WHERE a = :a", {"a": 2**62+3})
            print(r.rows, r.columns)
            rs = await c.batch(["INSERT INTO p VALUES (1, 'x')", "SELECT count(*) FROM p"])
            print(rs[1].rows)
            try:
                await c.execute("SELEC")
            except libsql_client.LibsqlError as e:
                print("err", e.code, e)
    def rust():
        conn = libsql.connect(server.url)
        conn.execute("CREATE TABLE IF NOT EXISTS r(a INTEGER, b TEXT)")
        conn.execute("INSERT INTO r VALUES (?, ?)", (1, "x"))
        conn.executemany("INSERT INTO r VALUES (?, ?)", [(2, "y"), (3, "z")])
        conn.commit()
        cur = conn.execute("SELECT * FROM r")
        print("rust", cur.fetchall(), cur.description)
        conn.execute(f"INSERT INTO r VALUES ({2**62+3}, 'big')")
        conn.commit()
        print(conn.execute("SELECT a FROM r WHERE b='big'").fetchall())
    await asyncio.to_thread(rust)
    assert 0
