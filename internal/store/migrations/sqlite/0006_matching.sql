-- Matching and attribution (internal/matching): which visits, calls and
-- leads led to each order, why, and how each model splits its credit.

-- Evidence counts only from this many days before an order.
ALTER TABLE counters ADD COLUMN lookback_days integer NOT NULL DEFAULT 365;

-- Orders to (re)match: new or changed orders, and orders that late data
-- (a call, a lead, a contact) may concern.
CREATE TABLE match_queue (
    counter_id integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    order_id   text      NOT NULL,
    queued_at  timestamp NOT NULL,
    PRIMARY KEY (counter_id, order_id)
) WITHOUT ROWID;

-- How each order was matched: the strongest rung that found evidence
-- ('not_found' when none did) and all the evidence, as JSON.
CREATE TABLE order_matches (
    counter_id       integer   NOT NULL,
    order_id         text      NOT NULL,
    rung             text      NOT NULL, -- sid, uuid, caller_phone, phone, email, hash, contact, not_found
    status_type      text      NOT NULL, -- the order's status type when matched ('' = unmapped): a change is an event for webhooks
    evidence         text      NOT NULL, -- JSON array: [{"rung", "key", "value", "kind", "ref", "at"}]
    touches          integer   NOT NULL,
    order_created_at timestamp NOT NULL,
    matched_at       timestamp NOT NULL,
    PRIMARY KEY (counter_id, order_id)
) WITHOUT ROWID;
CREATE INDEX order_matches_created ON order_matches (counter_id, order_created_at);

-- An order's touch path — sessions, calls without a session (static
-- numbers) — oldest first, with each model's weight.
-- An order that was not found has one touch of kind 'none', so reports
-- show it. Reports sum the weight column of the model they are asked for.
CREATE TABLE order_touches (
    counter_id       integer   NOT NULL,
    order_id         text      NOT NULL,
    seq              integer   NOT NULL,
    kind             text      NOT NULL, -- session, call, lead, none
    ref              text      NOT NULL, -- sid, call id, lead id
    at               timestamp NOT NULL,
    order_created_at timestamp NOT NULL,
    traffic_type     text      NOT NULL,
    source           text      NOT NULL,
    medium           text      NOT NULL,
    campaign         text      NOT NULL,
    content          text      NOT NULL,
    term             text      NOT NULL,
    w_last_non_direct real     NOT NULL,
    w_last_click      real     NOT NULL,
    w_first_click     real     NOT NULL,
    w_linear          real     NOT NULL,
    w_position_based  real     NOT NULL,
    w_time_decay      real     NOT NULL,
    PRIMARY KEY (counter_id, order_id, seq)
) WITHOUT ROWID;
CREATE INDEX order_touches_created ON order_touches (counter_id, order_created_at);
CREATE INDEX order_touches_at ON order_touches (counter_id, at);

-- The customer keys of matched orders (phones, e-mails, their md5s, the
-- contact), so late data finds the orders it concerns.
CREATE TABLE order_keys (
    counter_id integer NOT NULL,
    kind       text    NOT NULL, -- phone, email, phone_md5, email_md5, contact
    value      text    NOT NULL,
    order_id   text    NOT NULL,
    PRIMARY KEY (counter_id, kind, value, order_id)
) WITHOUT ROWID;
CREATE INDEX order_keys_order ON order_keys (counter_id, order_id);

-- Orders whose caller phone is known, for calls that arrive after them.
CREATE INDEX crm_orders_caller ON crm_orders (counter_id, caller_phone) WHERE caller_phone <> '';
