-- Business data the agent's tools read and write: the product catalog, contacts' own fields,
-- appointments (resources, services, working hours, closures, bookings) and orders.
--
-- Same rules as 0001: every table has tenant_id and every foreign key includes it, so a row can
-- never point at another tenant's row.

CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- Text search that ignores case and accents: customers type "tenis" for "Tênis" and "cafe" for
-- "café". The simple configuration matches whole words in any language; one configuration
-- per supported language adds its stems, so "camisetas" finds "camiseta".
CREATE TEXT SEARCH CONFIGURATION atende_simple (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION atende_simple
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH unaccent, simple;
CREATE TEXT SEARCH CONFIGURATION atende_portuguese (COPY = portuguese);
ALTER TEXT SEARCH CONFIGURATION atende_portuguese
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH unaccent, portuguese_stem;
CREATE TEXT SEARCH CONFIGURATION atende_spanish (COPY = spanish);
ALTER TEXT SEARCH CONFIGURATION atende_spanish
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH unaccent, spanish_stem;
CREATE TEXT SEARCH CONFIGURATION atende_english (COPY = english);
ALTER TEXT SEARCH CONFIGURATION atende_english
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH unaccent, english_stem;

-- array_to_string is only STABLE in general (element output functions may depend on
-- settings); for text[] it cannot change, and a generated column needs an IMMUTABLE call.
CREATE FUNCTION atende_words(text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN array_to_string($1, ' ');

-- Combine one search term per word: all words must match, or any of them may.
CREATE AGGREGATE atende_tsquery_all(tsquery) (SFUNC = tsquery_and, STYPE = tsquery);
CREATE AGGREGATE atende_tsquery_any(tsquery) (SFUNC = tsquery_or, STYPE = tsquery);

-- Contacts: an email and the tenant's own fields (plan, CPF, preferred store...). The provider
-- identity (provider, provider_contact_id, phone) stays as the ingress wrote it.
ALTER TABLE contacts
    ADD COLUMN email text
        CHECK (char_length(email) <= 254 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
    ADD COLUMN custom_fields jsonb NOT NULL DEFAULT '{}'::jsonb
        CHECK (jsonb_typeof(custom_fields) = 'object' AND octet_length(custom_fields::text) <= 16384);

CREATE TABLE products (
    tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    product_id text NOT NULL DEFAULT gen_random_uuid()::text
        CHECK (char_length(product_id) BETWEEN 1 AND 128),
    sku text CHECK (char_length(sku) BETWEEN 1 AND 128),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 256),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 8000),
    category text CHECK (char_length(category) BETWEEN 1 AND 128),
    -- Lower case, so a filter on tags is an exact match.
    tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 32),
    -- The language of name and description, whose stems the search adds.
    language text NOT NULL DEFAULT 'simple'
        CHECK (language IN ('simple', 'portuguese', 'spanish', 'english')),
    price numeric(12, 2) NOT NULL CHECK (price >= 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Null when stock is not tracked (services, made to order): always available.
    stock_quantity integer CHECK (stock_quantity >= 0),
    url text CHECK (char_length(url) <= 2048),
    active boolean NOT NULL DEFAULT true,
    embedding vector(384),
    embedding_model text,
    search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('atende_simple'::regconfig, name), 'A')
        || setweight(
            to_tsvector('atende_simple'::regconfig,
                coalesce(category, '') || ' ' || atende_words(tags)), 'B')
        || setweight(to_tsvector('atende_simple'::regconfig, description), 'C')
        || setweight(
            to_tsvector(
                CASE language
                    WHEN 'portuguese' THEN 'atende_portuguese'::regconfig
                    WHEN 'spanish' THEN 'atende_spanish'::regconfig
                    WHEN 'english' THEN 'atende_english'::regconfig
                    ELSE 'atende_simple'::regconfig
                END,
                name || ' ' || description), 'D')
    ) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, product_id),
    CHECK ((embedding IS NULL) = (embedding_model IS NULL))
);
CREATE UNIQUE INDEX products_sku_uq ON products (tenant_id, sku) WHERE sku IS NOT NULL;
CREATE INDEX products_search_idx ON products USING gin (search_vector);
CREATE INDEX products_tags_idx ON products USING gin (tags);
CREATE INDEX products_category_idx ON products (tenant_id, lower(category));
CREATE INDEX products_embedding_idx ON products USING hnsw (embedding vector_cosine_ops);

-- Who or what is booked: a professional, a room, a piece of equipment.
CREATE TABLE resources (
    tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    resource_id text NOT NULL DEFAULT gen_random_uuid()::text
        CHECK (char_length(resource_id) BETWEEN 1 AND 128),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 256),
    kind text NOT NULL DEFAULT 'professional'
        CHECK (kind IN ('professional', 'room', 'equipment')),
    -- IANA zone (e.g. America/Sao_Paulo): working hours are wall-clock times in it.
    time_zone text NOT NULL DEFAULT 'UTC' CHECK (char_length(time_zone) BETWEEN 1 AND 64),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, resource_id)
);

CREATE TABLE services (
    tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    service_id text NOT NULL DEFAULT gen_random_uuid()::text
        CHECK (char_length(service_id) BETWEEN 1 AND 128),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 256),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    duration_minutes integer NOT NULL CHECK (duration_minutes BETWEEN 5 AND 720),
    price numeric(12, 2) CHECK (price >= 0),
    currency text CHECK (currency ~ '^[A-Z]{3}$'),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, service_id),
    CHECK ((price IS NULL) = (currency IS NULL))
);
CREATE UNIQUE INDEX services_name_uq ON services (tenant_id, lower(name));

-- Which resource performs which service.
CREATE TABLE resource_services (
    tenant_id text NOT NULL,
    resource_id text NOT NULL,
    service_id text NOT NULL,
    PRIMARY KEY (tenant_id, resource_id, service_id),
    FOREIGN KEY (tenant_id, resource_id) REFERENCES resources ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, service_id) REFERENCES services ON DELETE CASCADE
);

-- Opening windows per ISO weekday (1 = Monday) in the resource's time zone. A break is the
-- gap between two windows of the same day (09:00-12:00 and 13:00-18:00).
CREATE TABLE working_hours (
    tenant_id text NOT NULL,
    resource_id text NOT NULL,
    weekday smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    opens_at time NOT NULL,
    closes_at time NOT NULL,
    PRIMARY KEY (tenant_id, resource_id, weekday, opens_at),
    FOREIGN KEY (tenant_id, resource_id) REFERENCES resources ON DELETE CASCADE,
    -- A day's last window closes by 23:59: a window never spans midnight.
    CHECK (closes_at > opens_at AND closes_at < '24:00')
);

-- Holidays, vacations, maintenance: no booking overlaps them. A null resource closes the
-- whole business.
CREATE TABLE closures (
    closure_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    resource_id text,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    reason text CHECK (char_length(reason) <= 256),
    FOREIGN KEY (tenant_id, resource_id) REFERENCES resources ON DELETE CASCADE,
    CHECK (ends_at > starts_at)
);
CREATE INDEX closures_range_idx ON closures USING gist (tenant_id, tstzrange(starts_at, ends_at));

CREATE TABLE appointments (
    tenant_id text NOT NULL,
    appointment_id text NOT NULL DEFAULT gen_random_uuid()::text
        CHECK (char_length(appointment_id) BETWEEN 1 AND 128),
    resource_id text NOT NULL,
    service_id text NOT NULL,
    contact_id text NOT NULL,
    -- The conversation it was booked in, if any (an operator may book outside one).
    conversation_id text,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled')),
    notes text CHECK (char_length(notes) <= 1000),
    created_at timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz,
    PRIMARY KEY (tenant_id, appointment_id),
    FOREIGN KEY (tenant_id, resource_id) REFERENCES resources,
    FOREIGN KEY (tenant_id, service_id) REFERENCES services,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations ON DELETE SET NULL (conversation_id),
    CHECK (ends_at > starts_at),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    -- No double booking, whatever the race: two booked appointments of one resource never
    -- overlap. A cancelled one frees its time.
    CONSTRAINT appointments_no_overlap EXCLUDE USING gist (
        tenant_id WITH =, resource_id WITH =, tstzrange(starts_at, ends_at) WITH &&
    ) WHERE (status = 'booked')
);
CREATE INDEX appointments_contact_idx ON appointments (tenant_id, contact_id, starts_at);

-- Orders as the ERP sees them, for the customer's "where is my order?".
CREATE TABLE orders (
    tenant_id text NOT NULL,
    order_id text NOT NULL DEFAULT gen_random_uuid()::text
        CHECK (char_length(order_id) BETWEEN 1 AND 128),
    -- What the customer sees on the receipt and types in the chat.
    order_number text NOT NULL CHECK (order_number ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    contact_id text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'paid', 'processing', 'shipped', 'delivered',
                          'cancelled', 'returned')),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    subtotal numeric(12, 2) NOT NULL CHECK (subtotal >= 0),
    shipping_total numeric(12, 2) NOT NULL DEFAULT 0 CHECK (shipping_total >= 0),
    discount_total numeric(12, 2) NOT NULL DEFAULT 0 CHECK (discount_total >= 0),
    total numeric(12, 2) NOT NULL CHECK (total >= 0),
    carrier text CHECK (char_length(carrier) <= 128),
    tracking_code text CHECK (char_length(tracking_code) <= 128),
    tracking_url text CHECK (char_length(tracking_url) <= 2048),
    estimated_delivery date,
    placed_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, order_id),
    UNIQUE (tenant_id, order_number),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts ON DELETE CASCADE
);
CREATE INDEX orders_contact_idx ON orders (tenant_id, contact_id, placed_at);

CREATE TABLE order_items (
    tenant_id text NOT NULL,
    order_id text NOT NULL,
    line_no integer NOT NULL CHECK (line_no >= 1),
    -- The catalog product, while it exists; sku and name are kept as sold.
    product_id text,
    sku text CHECK (char_length(sku) <= 128),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 256),
    quantity integer NOT NULL CHECK (quantity >= 1),
    unit_price numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (tenant_id, order_id, line_no),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, product_id) REFERENCES products ON DELETE SET NULL (product_id)
);
