-- The two-way RetailCRM integration, after review: pulls learn which orders
-- changed from the order history (an append-only walk that pages cannot
-- shift under), pushes of an account that is rate limiting or down wait as a
-- whole, and setup can leave a note (a warning) on an active connection.
ALTER TABLE retailcrm_integrations ADD COLUMN history_cursor bigint NOT NULL DEFAULT 0; -- the last /orders/history id pulled; 0: none yet
ALTER TABLE retailcrm_integrations ADD COLUMN push_after timestamp; -- no push to the account before then (it answered 503/429 or was down)
ALTER TABLE retailcrm_integrations ADD COLUMN note text NOT NULL DEFAULT ''; -- a warning from setup, shown while active
