-- Sessions become insert-only (issue 3's performance work): a hit that
-- continues a session no longer rewrites the session's row, so a session's
-- last activity and its pageview and event counts are read from its hits
-- (the hits_session index holds them in order). On PostgreSQL each such
-- update also wrote a new entry into every index of the table.
ALTER TABLE sessions DROP COLUMN last_activity_at;
ALTER TABLE sessions DROP COLUMN pageviews;
ALTER TABLE sessions DROP COLUMN events;
-- No foreign key to counters, like hits: checking it locked the counter's
-- row once per new session. Deleting a counter deletes its sessions
-- explicitly (demo.Reset lists every table with counter_id).
ALTER TABLE sessions DROP CONSTRAINT sessions_counter_id_fkey;
