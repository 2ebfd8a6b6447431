"""The public surface: one sorted __all__, every name real, and a light import."""

import subprocess
import sys

import edgestore


def test_all_is_sorted_and_unique() -> None:
    names = [n for n in edgestore.__all__ if n != "__version__"]
    assert names == sorted(names, key=str.lower) or names == sorted(names)
    assert len(set(edgestore.__all__)) == len(edgestore.__all__)


def test_every_public_name_exists() -> None:
    for name in edgestore.__all__:
        assert hasattr(edgestore, name), name


def test_no_private_leaks() -> None:
    public = {n for n in vars(edgestore) if not n.startswith("_")}
    # Subpackages become attributes when imported; they are namespaces, not API.
    submodules = {
        "config",
        "errors",
        "auth",
        "storage",
        "cache",
        "opening",
        "memory",
        "tables",
        "hrana",
        "replication",
        "migrate",
        "sqlalchemy",
        "web",
        "cli",
    }
    assert public - submodules - set(edgestore.__all__) == set()


def test_import_does_not_pull_frameworks() -> None:
    code = (
        "import sys, edgestore; "
        "bad = [m for m in ('litestar', 'click', 'granian', 'uvicorn', 'psycopg', 'redis', "
        "'sqlalchemy') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_errors_share_one_base_with_detail() -> None:
    for name in edgestore.__all__:
        obj = getattr(edgestore, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, edgestore.EdgestoreError), name
    err = edgestore.ConstraintViolation("x", code="SQLITE_CONSTRAINT_UNIQUE")
    assert err.detail == "x"
    assert err.code == "SQLITE_CONSTRAINT_UNIQUE"
