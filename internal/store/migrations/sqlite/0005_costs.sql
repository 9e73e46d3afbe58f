-- Ad costs (internal/costs): what each day of each campaign cost, with its
-- clicks and impressions, as uploaded from CSV or JSON. One row per day ×
-- source × medium × campaign × content × term; a re-upload replaces it.
--
-- The primary key leads with (counter_id, day): it is the index report
-- queries over a date range use (on SQLite the table itself, WITHOUT ROWID).

CREATE TABLE ad_costs (
    counter_id  integer   NOT NULL REFERENCES counters (id) ON DELETE CASCADE,
    day         text      NOT NULL, -- YYYY-MM-DD, the counter's local day
    source      text      NOT NULL, -- utm_source, trimmed and lower-cased
    medium      text      NOT NULL, -- utm_medium, trimmed and lower-cased; '' = none
    campaign    text      NOT NULL, -- utm_campaign, trimmed; '' = none
    content     text      NOT NULL, -- utm_content, trimmed; '' = none
    term        text      NOT NULL, -- utm_term (keyword), trimmed; '' = none
    cost        integer   NOT NULL, -- minor units (kopecks), never negative
    clicks      integer   NOT NULL,
    impressions integer   NOT NULL,
    currency    text      NOT NULL DEFAULT 'RUB', -- ISO 4217
    imported_at timestamp NOT NULL, -- when an import last changed the row
    PRIMARY KEY (counter_id, day, source, medium, campaign, content, term)
) WITHOUT ROWID;
