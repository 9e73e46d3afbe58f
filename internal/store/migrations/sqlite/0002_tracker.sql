-- Per-counter session rules (see internal/tracker/session.go).
ALTER TABLE counters ADD COLUMN session_timeout_minutes integer NOT NULL DEFAULT 30;
ALTER TABLE counters ADD COLUMN new_session_on_campaign boolean NOT NULL DEFAULT true;

-- A session is one visit: consecutive hits of one visitor (uuid) with no gap
-- longer than the counter's timeout and from one campaign or ad click.
CREATE TABLE sessions (
    counter_id       integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    sid              text      NOT NULL,
    uuid             text      NOT NULL, -- the visitor id (Metrica's ClientID, K50's uuid)
    started_at       timestamp NOT NULL,
    last_activity_at timestamp NOT NULL,
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
    pageviews        integer   NOT NULL,
    events           integer   NOT NULL,
    device           text      NOT NULL, -- desktop, mobile, tablet
    browser          text      NOT NULL,
    os               text      NOT NULL,
    ip               text      NOT NULL, -- anonymised: last octet / last 80 bits zeroed
    PRIMARY KEY (counter_id, sid)
) WITHOUT ROWID;
CREATE INDEX sessions_visitor ON sessions (counter_id, uuid, started_at);
CREATE INDEX sessions_started ON sessions (counter_id, started_at, sid);

-- Pageviews and events, in the order they happened within a session.
-- (SQLite: the rowid is the hit id; the index leads with counter_id.)
CREATE TABLE hits (
    id         integer   PRIMARY KEY,
    counter_id integer   NOT NULL,
    sid        text      NOT NULL,
    at         timestamp NOT NULL,
    type       text      NOT NULL, -- pageview or event
    url        text      NOT NULL,
    title      text      NOT NULL,
    name       text      NOT NULL, -- event name; empty for pageviews
    props      text      NOT NULL  -- event properties as a JSON object; '{}' when none
    -- No foreign key to sessions: the collector writes a hit in the same
    -- transaction as its session, and checking the key costs a lookup per hit.
);
CREATE INDEX hits_session ON hits (counter_id, sid, at);

-- Hits from robots are counted, not stored: per counter and day (counter's time zone).
CREATE TABLE bot_hits (
    counter_id integer NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    day        text    NOT NULL, -- YYYY-MM-DD
    hits       integer NOT NULL,
    PRIMARY KEY (counter_id, day)
) WITHOUT ROWID;
