-- Example schema applied by edgestore at open (and by `edgestore schema apply`).
-- Files named NNNN_name.sql in this directory are applied in order, each exactly once;
-- the applied ones are recorded in the table sqlite_edgestore_schema.
CREATE TABLE IF NOT EXISTS items (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    price      INTEGER NOT NULL DEFAULT 0 CHECK (price >= 0),
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS items_name ON items(name);
