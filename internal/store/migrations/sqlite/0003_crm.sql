-- CRM data: customers (contacts), their orders, the status mapping, and a
-- log of every import. See internal/crm.
--
-- Multi-valued fields are JSON arrays of normalised strings ('[]' when
-- empty); money is integer minor units (kopecks); times are UTC.

CREATE TABLE crm_contacts (
    counter_id   integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    uniq_id      text      NOT NULL, -- the customer's id in the CRM
    name         text      NOT NULL,
    created_at   timestamp,          -- in the CRM; never changed once set
    updated_at   timestamp,
    client_ids   text      NOT NULL, -- visitor ids
    user_ids     text      NOT NULL,
    phones       text      NOT NULL, -- normalised: 79995551111
    emails       text      NOT NULL, -- normalised: lower case
    phones_md5   text      NOT NULL, -- md5s as given (the md5 of phones is derived when read)
    emails_md5   text      NOT NULL,
    birth_date   text      NOT NULL, -- YYYY-MM-DD or ''
    company_id   text      NOT NULL,
    comment      text      NOT NULL,
    attributes   text      NOT NULL, -- JSON object: name → [values]
    row_hash     integer   NOT NULL, -- of the content, to skip unchanged rows on re-import
    import_id    text      NOT NULL, -- the import that last changed it
    imported_at  timestamp NOT NULL, -- first stored
    changed_at   timestamp NOT NULL, -- content last changed
    PRIMARY KEY (counter_id, uniq_id)
) WITHOUT ROWID;

CREATE TABLE crm_orders (
    counter_id   integer   NOT NULL, -- no foreign key: checking it costs a lookup per row of a bulk import
    order_id     text      NOT NULL, -- the order's id in the CRM
    contact_id   text      NOT NULL, -- crm_contacts.uniq_id, '' when none (no foreign key: contacts may arrive later)
    created_at   timestamp NOT NULL,
    updated_at   timestamp,
    finished_at  timestamp,
    status       text      NOT NULL, -- the CRM's status code as given; '' = none
    status_type  text,               -- PAID, IN_PROGRESS, CANCELLED, SPAM, OTHER; NULL = status not mapped
    revenue      integer,            -- kopecks; NULL = unknown
    cost         integer,
    margin       integer,
    items        integer,
    currency     text      NOT NULL, -- ISO 4217
    comment      text      NOT NULL,
    order_type   text      NOT NULL, -- online, offline
    sid          text      NOT NULL, -- the matching keys the order carries
    caller_phone text      NOT NULL,
    client_ids   text      NOT NULL,
    phones       text      NOT NULL,
    emails       text      NOT NULL,
    phones_md5   text      NOT NULL,
    emails_md5   text      NOT NULL,
    products     text      NOT NULL, -- JSON object: product id → quantity
    goals        text      NOT NULL, -- JSON array: [{"goal_action_id": …, "price": …}]
    attributes   text      NOT NULL,
    intake       text      NOT NULL, -- k50, simple_orders, orders
    id_generated boolean   NOT NULL, -- a simple-orders row without an id: order_id is a hash of the row
    row_hash     integer   NOT NULL,
    import_id    text      NOT NULL,
    imported_at  timestamp NOT NULL,
    changed_at   timestamp NOT NULL,
    PRIMARY KEY (counter_id, order_id)
) WITHOUT ROWID;
CREATE INDEX crm_orders_created ON crm_orders (counter_id, created_at, order_id);
-- A contact's orders (and Metrica's limit of 100,000 per contact).
CREATE INDEX crm_orders_contact ON crm_orders (counter_id, contact_id) WHERE contact_id <> '';

-- The counter's CRM status codes and what each means (Metrica's order_statuses).
CREATE TABLE crm_order_statuses (
    counter_id      integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    code            text      NOT NULL,
    type            text      NOT NULL,
    humanized       text      NOT NULL,
    goal_action_ids text      NOT NULL, -- JSON array
    source          text      NOT NULL, -- USER (API), AUTO (a connected CRM)
    updated_at      timestamp NOT NULL,
    PRIMARY KEY (counter_id, code)
) WITHOUT ROWID;

-- Custom attributes declared for contacts, orders and products.
CREATE TABLE crm_attributes (
    counter_id  integer NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    entity_type text    NOT NULL, -- CONTACT, ORDER, PRODUCT
    name        text    NOT NULL,
    type_name   text    NOT NULL,
    multivalued boolean NOT NULL,
    humanized   text    NOT NULL,
    PRIMARY KEY (counter_id, entity_type, name)
) WITHOUT ROWID;

-- The product list orders refer to.
CREATE TABLE crm_products (
    counter_id integer NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    name       text    NOT NULL,
    humanized  text    NOT NULL,
    PRIMARY KEY (counter_id, name)
) WITHOUT ROWID;

-- Every import: an API upload, a CLI import, an import task's run.
CREATE TABLE crm_imports (
    counter_id  integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    id          text      NOT NULL, -- time-ordered UUID (Metrica's uploading_id)
    task_id     integer,            -- the import task that ran it
    intake      text      NOT NULL, -- k50, simple_orders, orders, contacts
    format      text      NOT NULL, -- CSV, JSON
    source      text      NOT NULL, -- API, CLI, TASK
    merge_mode  text      NOT NULL,
    origin      text      NOT NULL, -- file name or URL (without credentials)
    status      text      NOT NULL, -- running, passed, failed
    message     text      NOT NULL, -- why it failed, or what it skipped
    started_at  timestamp NOT NULL,
    finished_at timestamp,
    rows_read   integer   NOT NULL,
    inserted    integer   NOT NULL,
    updated     integer   NOT NULL,
    unchanged   integer   NOT NULL,
    rejected    integer   NOT NULL,
    errors      text      NOT NULL, -- JSON array: the first rejected rows [{line, column, message}]
    PRIMARY KEY (counter_id, id)
) WITHOUT ROWID;
CREATE INDEX crm_imports_task ON crm_imports (counter_id, task_id, started_at) WHERE task_id IS NOT NULL;

-- Import tasks fetch a CRM feed by URL every few hours.
CREATE TABLE import_tasks (
    id              integer   PRIMARY KEY,
    counter_id      integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    name            text      NOT NULL,
    active          boolean   NOT NULL,
    type            text      NOT NULL, -- csv_feed
    url             text      NOT NULL,
    frequency_hours integer   NOT NULL,
    column_mapping  text      NOT NULL, -- JSON object: K50 column → the feed's header
    skip_bad_rows   boolean   NOT NULL, -- apply the good rows of a file with bad ones (else refuse the file)
    next_run_at     timestamp,          -- NULL when inactive
    created_at      timestamp NOT NULL,
    updated_at      timestamp NOT NULL
);
CREATE INDEX import_tasks_counter ON import_tasks (counter_id, id);
CREATE INDEX import_tasks_due ON import_tasks (next_run_at) WHERE active;
