-- Import tasks of type retailcrm (internal/imports, issue 7): orders read
-- from a RetailCRM account's API. The account URL is import_tasks.url, the
-- parameter mapping is column_mapping (parameter → order field); these
-- columns hold the rest. csv_feed tasks leave them empty.

-- The API key, sealed by secrets.Box (purpose "retailcrm.api_key"); never
-- stored or shown in clear.
ALTER TABLE import_tasks ADD COLUMN api_key text NOT NULL DEFAULT '';
-- The first run imports the orders created from this instant on.
ALTER TABLE import_tasks ADD COLUMN start_date timestamp;
-- Where the next run starts, as JSON: {"history_since_id": N} or
-- {"history_start": "…"} after the first run; '' before it. Written only
-- after a run's orders are committed.
ALTER TABLE import_tasks ADD COLUMN sync_cursor text NOT NULL DEFAULT '';
