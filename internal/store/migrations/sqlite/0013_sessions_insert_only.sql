-- Sessions become insert-only (issue 3's performance work): a hit that
-- continues a session no longer rewrites the session's row, so a session's
-- last activity and its pageview and event counts are read from its hits
-- (the hits_session index holds them in order).
-- No foreign key to counters, like hits: checking it cost a lookup per new
-- session. Deleting a counter deletes its sessions explicitly (demo.Reset
-- lists every table with counter_id). SQLite cannot drop a constraint, so
-- the table is rebuilt.
CREATE TABLE sessions_new (
    counter_id       integer   NOT NULL,
    sid              text      NOT NULL,
    uuid             text      NOT NULL, -- the visitor id (Metrica's ClientID, K50's uuid)
    started_at       timestamp NOT NULL,
    landing_url      text      NOT NULL,
    referrer         text      NOT NULL,
    utm_source       text      NOT NULL,
    utm_medium       text      NOT NULL,
    utm_campaign     text      NOT NULL,
    utm_content      text      NOT NULL,
    utm_term         text      NOT NULL,
    click_ids        text      NOT NULL, -- JSON object: {"yclid": "…", "gclid": "…"}
    traffic_type     text      NOT NULL, -- ad, organic, social, referral, internal, email, direct
    source           text      NOT NULL,
    medium           text      NOT NULL,
    device           text      NOT NULL, -- desktop, mobile, tablet
    browser          text      NOT NULL,
    os               text      NOT NULL,
    ip               text      NOT NULL, -- anonymised: last octet / last 80 bits zeroed
    PRIMARY KEY (counter_id, sid)
) WITHOUT ROWID;
INSERT INTO sessions_new (counter_id, sid, uuid, started_at, landing_url, referrer,
    utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids,
    traffic_type, source, medium, device, browser, os, ip)
SELECT counter_id, sid, uuid, started_at, landing_url, referrer,
    utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_ids,
    traffic_type, source, medium, device, browser, os, ip
FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE INDEX sessions_visitor ON sessions (counter_id, uuid, started_at);
CREATE INDEX sessions_started ON sessions (counter_id, started_at, sid);
