-- Call tracking (tracked numbers, pools, leases, calls from telephony
-- webhooks) and leads (forms, chats, e-mails, callbacks). See
-- internal/calltracking and internal/leads.

-- Dynamic number insertion and call settings of a counter.
ALTER TABLE counters ADD COLUMN dni_selector text NOT NULL DEFAULT '';      -- CSS selector of the elements that show the phone
ALTER TABLE counters ADD COLUMN dni_phone text NOT NULL DEFAULT '';         -- the site's own phone as written on its pages, normalised
ALTER TABLE counters ADD COLUMN lease_hold_minutes integer NOT NULL DEFAULT 15;
ALTER TABLE counters ADD COLUMN lease_cooldown_seconds integer NOT NULL DEFAULT 300;
ALTER TABLE counters ADD COLUMN unique_call_days integer NOT NULL DEFAULT 30;
ALTER TABLE counters ADD COLUMN capture_forms boolean NOT NULL DEFAULT false;

-- A pool lends its numbers to sessions one at a time. Pools are tried by
-- priority; a pool's rule (JSON, {} = every session) says which sessions it serves.
CREATE TABLE number_pools (
    id              integer   PRIMARY KEY AUTOINCREMENT, -- never reused: leases keep pool ids
    counter_id      integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    name            text      NOT NULL,
    priority        integer   NOT NULL,
    rule            text      NOT NULL, -- JSON: {"traffic_type", "source", "medium", "campaign"}; empty fields match anything
    fallback_number text      NOT NULL, -- shown when every number is taken; '' = keep the site's own
    shortages       integer   NOT NULL, -- sessions that found no free number
    last_shortage_at timestamp,
    created_at      timestamp NOT NULL,
    updated_at      timestamp NOT NULL
);
CREATE INDEX number_pools_counter ON number_pools (counter_id, priority, id);

-- Tracked numbers: in a pool (pool_id), or static (pool_id NULL) with the
-- source their calls are attributed to.
CREATE TABLE tracked_numbers (
    counter_id   integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    number       text      NOT NULL, -- normalised: 74951112233
    pool_id      integer,
    source       text      NOT NULL, -- static numbers: the calls' source, medium, campaign
    medium       text      NOT NULL,
    campaign     text      NOT NULL,
    rule         text      NOT NULL, -- static numbers: JSON rule of the sessions that are shown it; '' = offline only (a flyer)
    active       boolean   NOT NULL,
    -- The lease the number is on, or was last on: it is free for another
    -- visitor from lease_end + the counter's cooldown, to its last holder at lease_end.
    holder_uuid  text      NOT NULL,
    lease_id     text      NOT NULL,
    lease_end    timestamp NOT NULL, -- when its last lease ended (or will, unless renewed)
    created_at   timestamp NOT NULL,
    PRIMARY KEY (counter_id, number)
) WITHOUT ROWID;
CREATE INDEX tracked_numbers_pool ON tracked_numbers (counter_id, pool_id, lease_end) WHERE pool_id IS NOT NULL;

-- Leases: which session held which number when. The evidence for matching
-- calls, kept after they end.
CREATE TABLE number_leases (
    counter_id    integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    id            text      NOT NULL, -- time-ordered UUID
    pool_id       integer   NOT NULL,
    number        text      NOT NULL,
    sid           text      NOT NULL,
    uuid          text      NOT NULL,
    leased_at     timestamp NOT NULL,
    last_seen_at  timestamp NOT NULL,
    expires_at    timestamp NOT NULL, -- last_seen_at + hold
    released_at   timestamp,
    release_reason text     NOT NULL, -- page closed, call, …
    PRIMARY KEY (counter_id, id)
) WITHOUT ROWID;
CREATE INDEX number_leases_number ON number_leases (counter_id, number, leased_at);
CREATE INDEX number_leases_session ON number_leases (counter_id, sid, leased_at);

-- Telephony webhooks: one per provider connection, found by its token.
CREATE TABLE call_hooks (
    counter_id  integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    id          text      NOT NULL,
    provider    text      NOT NULL, -- generic, zadarma, mango, twilio
    name        text      NOT NULL,
    token       text      NOT NULL, -- in the webhook's URL
    secret      text      NOT NULL, -- signature secret (Zadarma API secret, Twilio auth token, generic HMAC key)
    api_key     text      NOT NULL, -- Mango vpbx_api_key
    api_salt    text      NOT NULL, -- Mango vpbx_api_salt
    timezone    text      NOT NULL, -- for zoneless provider times
    forward_to  text      NOT NULL, -- Twilio: the shop's line, when Throughline answers the Voice URL
    created_at  timestamp NOT NULL,
    revoked_at  timestamp,
    PRIMARY KEY (counter_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX call_hooks_token ON call_hooks (token);

-- Calls, one per provider call id, completed by the provider's later events.
CREATE TABLE calls (
    id             integer   PRIMARY KEY AUTOINCREMENT,
    counter_id     integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    provider       text      NOT NULL,
    external_id    text      NOT NULL,
    direction      text      NOT NULL, -- in, out, internal, ''
    caller         text      NOT NULL, -- normalised; '' when it could not be
    caller_raw     text      NOT NULL, -- as the provider sent it
    caller_md5     text      NOT NULL, -- md5 of caller: orders that carry only hashed phones match by it
    tracked_number text      NOT NULL, -- normalised
    started_at     timestamp NOT NULL,
    answered       boolean,
    talk_seconds   integer,
    wait_seconds   integer,
    disposition    text      NOT NULL,
    recording_url  text      NOT NULL,
    employee       text      NOT NULL,
    ended          boolean   NOT NULL,
    match          text      NOT NULL, -- lease, after_lease, static, pool_exhausted, unidentified
    match_reason   text      NOT NULL, -- why, in words
    lease_id       text      NOT NULL,
    sid            text      NOT NULL,
    uuid           text      NOT NULL,
    traffic_type   text      NOT NULL,
    source         text      NOT NULL,
    medium         text      NOT NULL,
    campaign       text      NOT NULL,
    is_unique      boolean   NOT NULL, -- the caller's first call in the counter's unique_call_days
    created_at     timestamp NOT NULL,
    updated_at     timestamp NOT NULL
);
CREATE UNIQUE INDEX calls_external ON calls (counter_id, provider, external_id);
CREATE INDEX calls_started ON calls (counter_id, started_at, id);
CREATE INDEX calls_caller ON calls (counter_id, caller, started_at);
CREATE INDEX calls_caller_md5 ON calls (counter_id, caller_md5, started_at) WHERE caller_md5 <> '';

-- Webhook requests that could not be read: kept for the operator to inspect and replay.
CREATE TABLE hook_failures (
    id           integer   PRIMARY KEY AUTOINCREMENT,
    counter_id   integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    hook_id      text      NOT NULL,
    provider     text      NOT NULL,
    received_at  timestamp NOT NULL,
    method       text      NOT NULL,
    subpath      text      NOT NULL,
    url          text      NOT NULL, -- the URL the provider called, as received (Twilio signs it)
    query        text      NOT NULL,
    headers      text      NOT NULL, -- JSON object
    body         blob      NOT NULL,
    error        text      NOT NULL,
    field        text      NOT NULL,
    replayed_at  timestamp,
    replay_error text      NOT NULL
);
CREATE INDEX hook_failures_counter ON hook_failures (counter_id, received_at);

-- Leads: forms, chats, e-mails and callback requests, with the session they came from.
CREATE TABLE leads (
    id           integer   PRIMARY KEY AUTOINCREMENT,
    counter_id   integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    type         text      NOT NULL, -- form, chat, email, callback
    subject      text      NOT NULL,
    name         text      NOT NULL,
    phone        text      NOT NULL, -- normalised; '' when none or not a phone
    phone_raw    text      NOT NULL, -- as sent, when it could not be normalised
    email        text      NOT NULL,
    phone_md5    text      NOT NULL, -- md5 of phone and email: orders that carry only hashes match by them
    email_md5    text      NOT NULL,
    comment      text      NOT NULL,
    sid          text      NOT NULL,
    uuid         text      NOT NULL,
    traffic_type text      NOT NULL,
    source       text      NOT NULL,
    medium       text      NOT NULL,
    campaign     text      NOT NULL,
    origin       text      NOT NULL, -- api (server to server) or site (t.js)
    created_at   timestamp NOT NULL,
    received_at  timestamp NOT NULL
);
CREATE INDEX leads_created ON leads (counter_id, created_at, id);
CREATE INDEX leads_phone ON leads (counter_id, phone) WHERE phone <> '';
CREATE INDEX leads_email ON leads (counter_id, email) WHERE email <> '';
CREATE INDEX leads_phone_md5 ON leads (counter_id, phone_md5) WHERE phone_md5 <> '';
CREATE INDEX leads_email_md5 ON leads (counter_id, email_md5) WHERE email_md5 <> '';

-- Phones and e-mails typed into a site's forms (counters that opt in):
-- only their md5 is kept, with the session.
CREATE TABLE form_captures (
    counter_id  integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    md5         text      NOT NULL,
    kind        text      NOT NULL, -- phone, email
    sid         text      NOT NULL,
    uuid        text      NOT NULL,
    captured_at timestamp NOT NULL,
    PRIMARY KEY (counter_id, md5, sid)
) WITHOUT ROWID;
