-- A counter is one tracked site: the tenant that owns every other row.
CREATE TABLE counters (
    id         integer   PRIMARY KEY,
    name       text      NOT NULL,
    domain     text      NOT NULL,
    timezone   text      NOT NULL,
    created_at timestamp NOT NULL,
    updated_at timestamp NOT NULL
);

-- API tokens. The token's secret is never stored: only its SHA-256.
-- The token text carries counter_id and id, so lookup is by primary key.
CREATE TABLE api_tokens (
    counter_id  integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    id          text      NOT NULL,
    name        text      NOT NULL,
    secret_hash blob      NOT NULL,
    created_at  timestamp NOT NULL,
    revoked_at  timestamp,
    PRIMARY KEY (counter_id, id)
) WITHOUT ROWID;
