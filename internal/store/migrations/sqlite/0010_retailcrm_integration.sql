-- The two-way RetailCRM integration (internal/retailsync, seed 004): a
-- counter's connection to a RetailCRM account, the outbox of calls and
-- leads pushed to it, and the link of each pulled order (a deal) to a lead.

-- One connection per counter. The API key is sealed (secrets.Box).
CREATE TABLE retailcrm_integrations (
    counter_id      integer   NOT NULL PRIMARY KEY REFERENCES counters (id) ON DELETE CASCADE,
    url             text      NOT NULL, -- the account's base URL, normalised
    api_key         text      NOT NULL, -- sealed for "retailcrm.integration.api_key"
    names           text      NOT NULL, -- language of the customer name templates: ru, en
    state           text      NOT NULL, -- setting_up, active, failed
    error           text      NOT NULL, -- why it failed, or why setup is being retried
    setup_attempts  integer   NOT NULL,
    next_setup_at   timestamp,          -- setting_up: when setup runs next; NULL otherwise
    site            text      NOT NULL, -- the store new orders are created in ("the first store")
    sites           text      NOT NULL, -- JSON array of the account's store codes
    closed_statuses text      NOT NULL, -- JSON array: status codes of the complete and cancel groups
    timezone        text      NOT NULL, -- the account's, from /settings
    connected_at    timestamp NOT NULL, -- calls and leads that arrive from then on are pushed
    scanned_to      timestamp NOT NULL, -- arrivals before it are in the outbox
    pull_cursor     timestamp,          -- when the last pull started; NULL: nothing pulled yet
    next_pull_at    timestamp,
    last_pull_at    timestamp,
    pull_error      text      NOT NULL,
    lease_until     timestamp,          -- a process holds the setup or pull until then
    created_at      timestamp NOT NULL,
    updated_at      timestamp NOT NULL
);

-- The outbox and log of pushes: one row per call or lead, ever (the
-- primary key is what makes a lead pushed at most once).
CREATE TABLE retailcrm_pushes (
    counter_id       integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    kind             text      NOT NULL, -- call, lead
    lead_id          integer   NOT NULL, -- calls.id or leads.id
    lead_type        text      NOT NULL, -- call, form, chat, email, callback
    arrived_at       timestamp NOT NULL,
    status           text      NOT NULL, -- pending, done, failed
    due_at           timestamp NOT NULL, -- pending: the next attempt (or the end of a claim)
    attempts         integer   NOT NULL,
    outcome          text      NOT NULL, -- created_order, updated_order, already_marked, no_contact; '' until done
    customer_id      integer,
    customer_created boolean   NOT NULL,
    order_id         integer,
    error            text      NOT NULL, -- the last failure
    updated_at       timestamp NOT NULL,
    PRIMARY KEY (counter_id, kind, lead_id)
) WITHOUT ROWID;
CREATE INDEX retailcrm_pushes_due ON retailcrm_pushes (due_at) WHERE status = 'pending';
CREATE INDEX retailcrm_pushes_arrived ON retailcrm_pushes (counter_id, arrived_at);

-- Each pulled order's link to a lead, decided once when the order is first
-- pulled and never changed (seed 004).
CREATE TABLE retailcrm_deals (
    counter_id integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    order_id   text      NOT NULL, -- crm_orders.order_id: the RetailCRM order id
    lead_kind  text      NOT NULL, -- call, lead; '' = "Lead not found"
    lead_id    integer,
    phone      text      NOT NULL, -- the linked lead's phone and e-mail, carried by the order
    email      text      NOT NULL, -- so that matching finds the same lead
    reason     text      NOT NULL, -- "call 17 by phone 79161234567", "Lead not found", …
    linked_at  timestamp NOT NULL,
    PRIMARY KEY (counter_id, order_id)
) WITHOUT ROWID;

-- Calls and leads in the order they arrived, for the outbox to pick up.
CREATE INDEX calls_arrived ON calls (counter_id, created_at);
CREATE INDEX leads_received ON leads (counter_id, received_at);
