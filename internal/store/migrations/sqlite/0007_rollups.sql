-- Report rollups (internal/rollup): per day and per finished month, in the
-- counter's time zone, what the end-to-end report sums — so a year's report
-- reads a few thousand rows, not ten million sessions. Rollups are built on
-- demand and rebuilt when the data under them changes.

-- UTC days whose sessions, calls, leads or order touches changed since the
-- rollups over them were built. Writers add them in their own transaction.
CREATE TABLE rollup_dirty (
    counter_id bigint NOT NULL,
    utc_day    text   NOT NULL, -- YYYY-MM-DD
    PRIMARY KEY (counter_id, utc_day)
) WITHOUT ROWID;

-- Periods whose rollups are built: days (YYYY-MM-DD) and finished months
-- (YYYY-MM) of the counter's time zone. A period without a row is built by
-- the next report that needs it.
CREATE TABLE rollup_periods (
    counter_id bigint NOT NULL,
    period     text   NOT NULL,
    built_at   timestamp NOT NULL,
    PRIMARY KEY (counter_id, period)
) WITHOUT ROWID;

-- Traffic: sessions (by start), calls and leads (by their time) per source.
-- grain 'c' rows leave content and term empty (for reports that do not
-- group by them); grain 'f' rows carry them.
CREATE TABLE rollup_traffic (
    counter_id     bigint NOT NULL,
    period         text   NOT NULL,
    grain          text   NOT NULL, -- c, f
    traffic_type   text   NOT NULL,
    source         text   NOT NULL, -- lower-cased, as ad costs are
    medium         text   NOT NULL, -- lower-cased
    campaign       text   NOT NULL,
    content        text   NOT NULL,
    term           text   NOT NULL,
    sessions       integer NOT NULL,
    visitors       blob NOT NULL, -- HyperLogLog sketch of the visitors (uuid)
    calls          integer NOT NULL,
    unique_calls   integer NOT NULL,
    answered_calls integer NOT NULL,
    leads          integer NOT NULL,
    PRIMARY KEY (counter_id, period, grain, traffic_type, source, medium, campaign, content, term)
) WITHOUT ROWID;

-- Orders: each model's share of orders, revenue and goal revenue (margin)
-- per touch source and order status type, dated by the order's creation
-- (basis 'order') or by the touch (basis 'visit').
CREATE TABLE rollup_orders (
    counter_id   bigint NOT NULL,
    period       text   NOT NULL,
    grain        text   NOT NULL,
    basis        text   NOT NULL, -- order, visit
    traffic_type text   NOT NULL,
    source       text   NOT NULL,
    medium       text   NOT NULL,
    campaign     text   NOT NULL,
    content      text   NOT NULL,
    term         text   NOT NULL,
    status_type  text   NOT NULL, -- PAID, IN_PROGRESS, CANCELLED, SPAM, OTHER; '' = not mapped
    orders_last_non_direct  real NOT NULL, revenue_last_non_direct  real NOT NULL, margin_last_non_direct  real NOT NULL,
    orders_last_click       real NOT NULL, revenue_last_click       real NOT NULL, margin_last_click       real NOT NULL,
    orders_first_click      real NOT NULL, revenue_first_click      real NOT NULL, margin_first_click      real NOT NULL,
    orders_linear           real NOT NULL, revenue_linear           real NOT NULL, margin_linear           real NOT NULL,
    orders_position_based   real NOT NULL, revenue_position_based   real NOT NULL, margin_position_based   real NOT NULL,
    orders_time_decay       real NOT NULL, revenue_time_decay       real NOT NULL, margin_time_decay       real NOT NULL,
    PRIMARY KEY (counter_id, period, grain, basis, traffic_type, source, medium, campaign, content, term, status_type)
) WITHOUT ROWID;

-- Ad costs per period and key (content and term empty on coarse rows),
-- so a year's report does not sum ad_costs row by row.
CREATE TABLE rollup_costs (
    counter_id  bigint NOT NULL,
    period      text   NOT NULL,
    grain       text   NOT NULL,
    source      text   NOT NULL,
    medium      text   NOT NULL,
    campaign    text   NOT NULL,
    content     text   NOT NULL,
    term        text   NOT NULL,
    cost        integer NOT NULL, -- minor units
    clicks      integer NOT NULL,
    impressions integer NOT NULL,
    PRIMARY KEY (counter_id, period, grain, source, medium, campaign, content, term)
) WITHOUT ROWID;

-- Orders by the rung that matched them (by order creation): the report's
-- data-quality line.
CREATE TABLE rollup_rungs (
    counter_id bigint NOT NULL,
    period     text   NOT NULL,
    rung       text   NOT NULL,
    orders     integer NOT NULL,
    PRIMARY KEY (counter_id, period, rung)
) WITHOUT ROWID;
