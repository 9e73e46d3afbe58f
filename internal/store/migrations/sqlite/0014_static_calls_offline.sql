-- A call to a static number is of traffic type offline (calltracking.
-- StaticTraffic), as the orders matched through it always were; calls
-- stored before with an empty type get it, so a report grouped by traffic
-- type shows the number's calls and orders in one row. Their days' rollups
-- are rebuilt. (The condition is the one order matching used to derive
-- offline at read time: no session, a source, no type.)
INSERT INTO rollup_dirty (counter_id, utc_day)
SELECT DISTINCT counter_id, date(started_at) FROM calls
WHERE sid = '' AND traffic_type = '' AND source <> ''
ON CONFLICT (counter_id, utc_day) DO NOTHING;
UPDATE calls SET traffic_type = 'offline' WHERE sid = '' AND traffic_type = '' AND source <> '';
