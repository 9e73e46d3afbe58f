-- The web cabinet's people, their roles on counters, and their sign-in state.
-- These tables belong to the instance, not to a counter; only counter_roles
-- is keyed by counter first, like every counter's data.

-- A person who signs in. The e-mail is normalised (trimmed, lowercase);
-- password_hash is an argon2id string, '' for a person who has not set a
-- password yet (they sign in through a one-time link and set one).
CREATE TABLE users (
    id            integer PRIMARY KEY,
    email         text        NOT NULL UNIQUE,
    name          text        NOT NULL DEFAULT '',
    password_hash text        NOT NULL DEFAULT '',
    is_admin      boolean     NOT NULL DEFAULT false,
    language      text        NOT NULL DEFAULT '',
    created_at    timestamp NOT NULL,
    updated_at    timestamp NOT NULL
);

-- What a person may do on a counter: owner > editor > viewer.
CREATE TABLE counter_roles (
    counter_id integer     NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    user_id    integer     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text        NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    created_at timestamp NOT NULL,
    PRIMARY KEY (counter_id, user_id)
);
CREATE INDEX counter_roles_user ON counter_roles (user_id);

-- Signed-in browsers. Only the SHA-256 of the cookie's 256-bit secret is
-- stored; a session ends 14 days after it was last seen.
CREATE TABLE web_sessions (
    id_hash      blob        PRIMARY KEY,
    user_id      integer     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamp NOT NULL,
    last_seen_at timestamp NOT NULL,
    user_agent   text        NOT NULL DEFAULT '',
    address      text        NOT NULL DEFAULT ''
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_seen ON web_sessions (last_seen_at);

-- One-time links: the first admin's setup link (no user yet), a sign-in
-- link (the demo's), a link to set a password. Used once, then deleted.
CREATE TABLE user_links (
    token_hash blob        PRIMARY KEY,
    purpose    text        NOT NULL CHECK (purpose IN ('setup', 'signin', 'password')),
    user_id    integer     REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamp NOT NULL,
    expires_at timestamp NOT NULL
);

-- Personal API tokens (an admin creating counters through the API). Like
-- counters' tokens, only the SHA-256 of the secret is stored.
CREATE TABLE user_tokens (
    user_id      integer     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id           text        NOT NULL,
    name         text        NOT NULL,
    secret_hash  blob        NOT NULL,
    created_at   timestamp NOT NULL,
    revoked_at   timestamp,
    PRIMARY KEY (user_id, id)
);

-- The currency the counter's money is shown in (ISO 4217).
ALTER TABLE counters ADD COLUMN currency text NOT NULL DEFAULT 'RUB';
