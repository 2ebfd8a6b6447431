"""A stored TEXT value that is not valid UTF-8 (SQLite keeps what it is given) is a clear
error naming the fix, on every read path, and the server goes on serving: it used to be a
bare 500 "internal error" (apsw decodes text strictly)."""

from __future__ import annotations

from pathlib import Path

import pytest

import edgestore
from edgestore.errors import InvalidTextError
from edgestore.storage import Store

BAD = "INSERT INTO t VALUES (1, CAST(x'ff41' AS TEXT)), (2, 'fine')"


async def test_every_store_read_path_names_the_bad_text(tmp_path: Path) -> None:
    st: Store = await edgestore.open(tmp_path / "text.db", schemas_dir=None)
    try:
        await st.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT)")
        await st.execute(BAD)
        for cache in (None, False):  # through the query cache and around it
            with pytest.raises(InvalidTextError, match=r"not valid UTF-8.*CAST"):
                await st.query("SELECT * FROM t", cache=cache)
        with pytest.raises(InvalidTextError):  # a write's RETURNING rows
            await st.execute("UPDATE t SET id = id + 10 WHERE id = 1 RETURNING s")
        # The failed write changed nothing; the other rows and the bytes still read.
        assert (await st.query("SELECT s FROM t WHERE id = 2")).values == [("fine",)]
        blob = await st.query("SELECT CAST(s AS BLOB) FROM t WHERE id = 1")
        assert blob.values == [(b"\xffA",)]
    finally:
        await st.close()
