-- Import tasks, after review of the retailcrm task: a run's cursor is saved
-- only if nobody reset it meanwhile, and a task runs once at a time whether
-- the scheduler or a user started it.

-- Bumped by every reset of sync_cursor (another account, start date or
-- mapping); a run saves its cursor only if it is still the generation the
-- run started from, so a reset made during a run is not overwritten.
ALTER TABLE import_tasks ADD COLUMN cursor_gen bigint NOT NULL DEFAULT 0;
-- Held by the run in progress (scheduled or manual) until then; NULL when
-- none runs. A lease past its time belongs to a stopped process.
ALTER TABLE import_tasks ADD COLUMN run_lease_until timestamptz;
