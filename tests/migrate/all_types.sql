-- Every type and constraint edgestore migrate promises to move, with edge values.
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE DOMAIN short_code AS varchar(8) CHECK (char_length(VALUE) >= 2);
CREATE TYPE pair AS (a integer, b text);

CREATE TABLE parent (
    region text NOT NULL,
    code integer NOT NULL,
    label varchar(20) NOT NULL DEFAULT 'none',
    PRIMARY KEY (region, code)
);

CREATE TABLE everything (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    i2 smallint,
    i4 integer NOT NULL DEFAULT 0,
    i8 bigint,
    num numeric(20, 6),
    num_free numeric,
    price numeric(10, 2) DEFAULT 0.00,
    r4 real,
    r8 double precision,
    flag boolean NOT NULL DEFAULT true,
    t text,
    vc varchar(10),
    ch char(4),
    b bytea,
    u uuid DEFAULT gen_random_uuid(),
    j json,
    jb jsonb,
    d date DEFAULT CURRENT_DATE,
    tm time,
    ttz timetz,
    ts timestamp,
    tstz timestamptz DEFAULT now(),
    iv interval,
    int_arr integer[],
    text_arr text[][],
    m mood,
    pos positive_int,
    code short_code,
    ip inet,
    net cidr,
    mac macaddr,
    tsv tsvector,
    cash money,
    bits bit(4),
    vbits varbit,
    comp pair,
    rng int4range,
    trng tstzrange,
    gen_total numeric GENERATED ALWAYS AS (price * 2) STORED,
    parent_region text,
    parent_code integer,
    CONSTRAINT everything_parent_fk FOREIGN KEY (parent_region, parent_code)
        REFERENCES parent (region, code) ON DELETE CASCADE,
    CONSTRAINT i4_range CHECK (i4 >= 0 AND i4 < 1000000),
    CONSTRAINT mood_or_flag CHECK (m IS NOT NULL OR flag),
    CONSTRAINT vc_values CHECK (vc IN ('a', 'b', 'c', 'hello') OR vc IS NULL),
    CONSTRAINT num_positive CHECK (num > 0),
    CONSTRAINT vc_unique UNIQUE (vc, ch)
);

CREATE UNIQUE INDEX everything_i8_key ON everything (i8) WHERE i8 IS NOT NULL;
CREATE INDEX everything_lower_t ON everything (lower(t));
CREATE INDEX everything_multi ON everything (i2 DESC, d);
CREATE INDEX everything_tsv ON everything USING gin (tsv);
CREATE INDEX everything_jb ON everything USING gin (jb);

CREATE TABLE no_key (
    a integer,
    b text
);

CREATE TABLE measurements (
    city text NOT NULL,
    at date NOT NULL,
    reading double precision,
    PRIMARY KEY (city, at)
) PARTITION BY RANGE (at);
CREATE TABLE measurements_2023 PARTITION OF measurements
    FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE measurements_2024 PARTITION OF measurements
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');

CREATE VIEW happy_things AS SELECT id, t FROM everything WHERE m = 'happy';
CREATE FUNCTION add_one(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x + 1';

INSERT INTO parent VALUES ('eu', 1, 'one'), ('eu', 2, 'two'), ('us', 1, 'uno');

INSERT INTO everything (i2, i4, i8, num, num_free, price, r4, r8, flag, t, vc, ch, b, u, j, jb,
    d, tm, ttz, ts, tstz, iv, int_arr, text_arr, m, pos, code, ip, net, mac, tsv, cash, bits,
    vbits, comp, rng, trng, parent_region, parent_code) VALUES
(-32768, 0, -9223372036854775808, 12345678901234.123456,
 '123456789012345678901234567890.123456789012345678901234567890', 19.99, 21.35,
 0.1, true, 'plain', 'a', 'ab', '\x00ff10', '3f2504e0-4f89-11d3-9a0c-0305e82c3301',
 '{"b": 1,  "a": [1, 2.50]}', '{"b": 1, "a": [1, 2.50], "c": null}', '2024-02-29',
 '23:59:59.999999', '12:00:00+05:30', '2000-01-01 00:00:00', '2024-06-01 12:34:56.789+02',
 '1 year 2 mons 3 days 04:05:06.5', '{1,2,NULL}', '{{"a","b"},{"c","d"}}', 'happy', 1,
 'AB', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', 'a fat cat sat', 12.34, '1010',
 '101', ROW(1, 'x'), '[1,10)', '[2024-01-01 00:00+00,2024-02-01 00:00+00)', 'eu', 1),
(32767, 999999, 9223372036854775807, 0.000001, 'NaN', 0, 'NaN', 'Infinity', false,
 E'tab\there\nnewline ''quote'' \\ backslash ünïcødé 🎉', 'b', 'xy  ', '\x', NULL,
 '[]', '{}', 'infinity', '00:00:00', NULL, '-infinity', 'infinity', '-1 days', '{}',
 '{}', 'sad', 2147483647, 'ABCDEFGH', '::1', '::/0', 'ff:ff:ff:ff:ff:ff', '', -99.99, '0000',
 '', ROW(NULL, NULL), 'empty', '(,)', 'eu', 2),
(NULL, 5, NULL, NULL, NULL, NULL, '-Infinity', '-0', true, '', NULL, NULL, NULL, NULL, NULL,
 'null', '0044-03-15 BC', NULL, NULL, '1999-12-31 23:59:59.5', '1970-01-01 00:00:00+00', NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL),
(1, 6, 1, 1e-6, '-0.000', 1, 3.4028235e38, 1.7976931348623157e308, true, 'x', 'c', 'a',
 '\xdeadbeef', '00000000-0000-0000-0000-000000000000', '"just a string"', '[1, "two", 3.0]',
 '1970-01-01', '12:00', '00:00:00-12', '1900-01-01 00:00:00.000001', '2038-01-19 03:14:08+00',
 '00:00:00.000001', '{-1,0,1}', '{"with \"quote\"","and,comma"}', 'ok', 7, 'zz', '2001:db8::1',
 '2001:db8::/32', '00:00:00:00:00:00', 'x:1A y:2B', 0, '1111', '1', ROW(-1, ''), '(0,5]',
 NULL, 'us', 1);

-- json keeps escapes Postgres text cannot hold as characters (NUL, a lone surrogate): the
-- text is moved exactly as written
CREATE TABLE escapes (id int PRIMARY KEY, j json, b bytea);
INSERT INTO escapes VALUES (1, '{"nul": "\u0000", "lone": "\ud800"}', '\x00'),
    (2, '"\\u0000 is not an escape here"', NULL);

INSERT INTO no_key VALUES (1, 'dup'), (1, 'dup'), (NULL, NULL), (2, 'two');

INSERT INTO measurements VALUES ('Oslo', '2023-05-01', 11.5), ('Oslo', '2024-05-01', 'NaN'),
    ('Rome', '2024-07-01', 31.25);
