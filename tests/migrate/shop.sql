-- A rental shop: the shape of an application database, not only of its data. Partitions with
-- their own foreign keys and indexes, domains, enums with defaults, sequences (owned and
-- shared), char(n), numeric at several precisions (p <= 15, p > 15, unconstrained), views that
-- SQLite can run and views it cannot, simple and not-so-simple row triggers.

CREATE DOMAIN year AS integer CHECK (VALUE >= 1901 AND VALUE <= 2155);
CREATE DOMAIN price AS numeric(6, 2) CHECK (VALUE >= 0);
CREATE TYPE mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17');
CREATE TYPE pay_status AS ENUM ('pending', 'paid', 'refunded');  -- not in text order

CREATE FUNCTION last_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_update = CURRENT_TIMESTAMP;
    RETURN NEW;
END $$;

CREATE FUNCTION film_title_upper() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.title <> upper(NEW.title) THEN
        NEW.title := upper(NEW.title);
    END IF;
    RETURN NEW;
END $$;

CREATE TABLE language (
    language_id serial PRIMARY KEY,
    name char(20) NOT NULL,
    last_update timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customer (
    customer_id serial PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    store_code char(4) NOT NULL DEFAULT 'S1',
    active boolean NOT NULL DEFAULT true,
    last_update timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE film (
    film_id serial PRIMARY KEY,
    title text NOT NULL,
    language_id int NOT NULL REFERENCES language (language_id),
    release_year year,
    rating mpaa_rating DEFAULT 'G',
    rental_rate price NOT NULL DEFAULT 4.99,
    replacement_cost numeric(5, 2) NOT NULL DEFAULT 19.99,
    length smallint,
    lifetime_gross numeric(20, 4),
    score numeric,
    exact_ratio numeric,
    fulltext tsvector NOT NULL,  -- filled by film_fulltext_trigger
    last_update timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX film_title_idx ON film (title);
CREATE INDEX film_fulltext_idx ON film USING gist (fulltext);

CREATE SEQUENCE ticket_seq START 500;
CREATE TABLE ticket (
    store char(4) NOT NULL,
    ticket_no int NOT NULL DEFAULT nextval('ticket_seq'),
    note text,
    PRIMARY KEY (store, ticket_no)
);

CREATE TABLE payment (
    payment_id serial NOT NULL,
    customer_id int NOT NULL,
    film_id int NOT NULL,
    amount numeric(5, 2) NOT NULL,
    status pay_status NOT NULL DEFAULT 'pending',
    payment_date timestamptz NOT NULL,
    PRIMARY KEY (payment_date, payment_id)
) PARTITION BY RANGE (payment_date);
CREATE TABLE payment_p2022_01 PARTITION OF payment
    FOR VALUES FROM ('2022-01-01 00:00:00+00') TO ('2022-02-01 00:00:00+00');
CREATE TABLE payment_p2022_02 PARTITION OF payment
    FOR VALUES FROM ('2022-02-01 00:00:00+00') TO ('2022-03-01 00:00:00+00');
CREATE TABLE payment_p2022_03 PARTITION OF payment
    FOR VALUES FROM ('2022-03-01 00:00:00+00') TO ('2022-04-01 00:00:00+00');
-- per-partition foreign keys and indexes, as pg_dump of a sample database writes them
ALTER TABLE payment_p2022_01 ADD CONSTRAINT payment_p2022_01_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customer (customer_id);
ALTER TABLE payment_p2022_02 ADD CONSTRAINT payment_p2022_02_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customer (customer_id);
ALTER TABLE payment_p2022_03 ADD CONSTRAINT payment_p2022_03_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customer (customer_id);
ALTER TABLE payment_p2022_01 ADD CONSTRAINT payment_p2022_01_film_id_fkey
    FOREIGN KEY (film_id) REFERENCES film (film_id);
ALTER TABLE payment_p2022_02 ADD CONSTRAINT payment_p2022_02_film_id_fkey
    FOREIGN KEY (film_id) REFERENCES film (film_id);
ALTER TABLE payment_p2022_03 ADD CONSTRAINT payment_p2022_03_film_id_fkey
    FOREIGN KEY (film_id) REFERENCES film (film_id);
CREATE INDEX idx_fk_payment_p2022_01_customer_id ON payment_p2022_01 (customer_id);
CREATE INDEX idx_fk_payment_p2022_02_customer_id ON payment_p2022_02 (customer_id);
CREATE INDEX idx_fk_payment_p2022_03_customer_id ON payment_p2022_03 (customer_id);
CREATE INDEX idx_fk_payment_p2022_01_film_id ON payment_p2022_01 (film_id);
CREATE INDEX idx_fk_payment_p2022_02_film_id ON payment_p2022_02 (film_id);
CREATE INDEX idx_fk_payment_p2022_03_film_id ON payment_p2022_03 (film_id);
ALTER TABLE payment_p2022_02 ADD CONSTRAINT payment_p2022_02_amount_check CHECK (amount < 100);

CREATE TRIGGER last_updated BEFORE UPDATE ON customer FOR EACH ROW EXECUTE FUNCTION last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON film FOR EACH ROW EXECUTE FUNCTION last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON language FOR EACH ROW EXECUTE FUNCTION last_updated();
CREATE TRIGGER film_fulltext_trigger BEFORE INSERT OR UPDATE ON film FOR EACH ROW
    EXECUTE FUNCTION tsvector_update_trigger(fulltext, 'pg_catalog.english', title);
CREATE TRIGGER film_title_upper BEFORE INSERT ON film FOR EACH ROW
    EXECUTE FUNCTION film_title_upper();

INSERT INTO language (name) VALUES ('English'), ('Italian'), ('Japanese');
INSERT INTO customer (first_name, last_name, store_code, active)
SELECT 'First' || g, 'Last' || (g % 17), CASE WHEN g % 3 = 0 THEN 'S2' ELSE 'S1' END, g % 5 <> 0
FROM generate_series(1, 40) g;
INSERT INTO film (title, language_id, release_year, rating, rental_rate, replacement_cost,
                  length, lifetime_gross, score, exact_ratio)
SELECT 'FILM ' || g, 1 + g % 3, 2000 + g % 20,
       (ARRAY['G', 'PG', 'PG-13', 'R', 'NC-17'])[1 + g % 5]::mpaa_rating,
       (ARRAY[0.99, 2.99, 4.99])[1 + g % 3], 9.99 + (g % 21),
       60 + g, 123456789012345.6789 * g, round((g * 1.5)::numeric, 1),
       CASE WHEN g = 7 THEN 1.0000000000000000001 ELSE g / 3.0 END
FROM generate_series(1, 60) g;
-- one film with the default rating and price
INSERT INTO film (title, language_id) VALUES ('DEFAULTS', 1);
INSERT INTO payment (customer_id, film_id, amount, status, payment_date)
SELECT 1 + g % 40, 1 + g % 60, (ARRAY[0.99, 2.99, 4.99, 5.99, 9.99, 10.99, 11.99])[1 + g % 7],
       (ARRAY['pending', 'paid', 'refunded'])[1 + g % 3]::pay_status,
       TIMESTAMPTZ '2022-01-01 00:00:00+00' + (g * INTERVAL '7 hours')
FROM generate_series(1, 280) g;
INSERT INTO ticket (store, note) SELECT CASE WHEN g % 2 = 0 THEN 'S1' ELSE 'S2' END, 'note ' || g
FROM generate_series(1, 10) g;
ANALYZE;

-- views SQLite can run (translated, then proved by running both sides)
CREATE VIEW customer_list AS
SELECT c.customer_id AS id, c.first_name || ' ' || c.last_name AS name, c.store_code,
       CASE WHEN c.active THEN 'active'::text ELSE ''::text END AS notes
FROM customer c;
CREATE VIEW sales_by_film AS
SELECT f.title, count(p.payment_id) AS payments, sum(p.amount) AS total, max(p.amount) AS top
FROM payment p JOIN film f ON f.film_id = p.film_id
GROUP BY f.title;
CREATE VIEW big_payments AS
SELECT payment_id, customer_id, amount FROM payment WHERE amount > 5;
-- views SQLite cannot run the same way
CREATE VIEW monthly_sales AS
SELECT date_trunc('month', payment_date) AS month, sum(amount) AS total
FROM payment GROUP BY 1;
CREATE VIEW film_titles_by_rating AS
SELECT rating, string_agg(title, ', ' ORDER BY title) AS titles FROM film GROUP BY rating;
CREATE MATERIALIZED VIEW rental_stats AS SELECT count(*) AS n FROM payment;
-- translates and runs, but sorts the enum by text: different rows, so not kept ...
CREATE VIEW first_status AS SELECT status FROM payment ORDER BY status LIMIT 1;
-- ... and a view on it that agrees by itself (one row either way) cannot stay without it
CREATE VIEW first_status_count AS SELECT count(*) AS n FROM first_status;
