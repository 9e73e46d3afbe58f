-- Order webhooks (internal/webhooks): each newly matched or status-changed
-- order is posted as JSON to the URLs a counter sets, signed with HMAC,
-- retried with backoff, every attempt logged.

CREATE TABLE webhooks (
    counter_id  integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    id          text      NOT NULL, -- random, URL-safe
    url         text      NOT NULL,
    secret      text      NOT NULL, -- HMAC-SHA256 key of the signature header
    active      boolean   NOT NULL,
    created_at  timestamp NOT NULL,
    updated_at  timestamp NOT NULL,
    PRIMARY KEY (counter_id, id)
);

-- One delivery of one order event to one webhook. Matching adds them (in
-- its transaction) for the counter's active webhooks; the sender posts them.
CREATE TABLE webhook_deliveries (
    id              integer   PRIMARY KEY AUTOINCREMENT,
    counter_id      integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    webhook_id      text      NOT NULL,
    order_id        text      NOT NULL,
    event           text      NOT NULL, -- matched (first match, or a different rung), status (the status type changed)
    status          text      NOT NULL, -- pending, delivered, failed (gave up)
    attempts        integer   NOT NULL,
    next_attempt_at timestamp NOT NULL,
    last_status     integer   NOT NULL, -- the receiver's HTTP status of the last attempt; 0 = none (network error)
    last_error      text      NOT NULL,
    created_at      timestamp NOT NULL,
    delivered_at    timestamp
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (counter_id, webhook_id, id);
