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
);

-- Periods whose rollups are built: days (YYYY-MM-DD) and finished months
-- (YYYY-MM) of the counter's time zone. A period without a row is built by
-- the next report that needs it.
CREATE TABLE rollup_periods (
    counter_id bigint NOT NULL,
    period     text   NOT NULL,
    built_at   timestamptz NOT NULL,
    PRIMARY KEY (counter_id, period)
);

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
    sessions       bigint NOT NULL,
    visitors       bytea NOT NULL, -- HyperLogLog sketch of the visitors (uuid)
    calls          bigint NOT NULL,
    unique_calls   bigint NOT NULL,
    answered_calls bigint NOT NULL,
    leads          bigint NOT NULL,
    PRIMARY KEY (counter_id, period, grain, traffic_type, source, medium, campaign, content, term)
);

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
    orders_last_non_direct  double precision NOT NULL, revenue_last_non_direct  double precision NOT NULL, margin_last_non_direct  double precision NOT NULL,
    orders_last_click       double precision NOT NULL, revenue_last_click       double precision NOT NULL, margin_last_click       double precision NOT NULL,
    orders_first_click      double precision NOT NULL, revenue_first_click      double precision NOT NULL, margin_first_click      double precision NOT NULL,
    orders_linear           double precision NOT NULL, revenue_linear           double precision NOT NULL, margin_linear           double precision NOT NULL,
    orders_position_based   double precision NOT NULL, revenue_position_based   double precision NOT NULL, margin_position_based   double precision NOT NULL,
    orders_time_decay       double precision NOT NULL, revenue_time_decay       double precision NOT NULL, margin_time_decay       double precision NOT NULL,
    PRIMARY KEY (counter_id, period, grain, basis, traffic_type, source, medium, campaign, content, term, status_type)
);

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
    cost        bigint NOT NULL, -- minor units
    clicks      bigint NOT NULL,
    impressions bigint NOT NULL,
    PRIMARY KEY (counter_id, period, grain, source, medium, campaign, content, term)
);

-- Orders by the rung that matched them (by order creation): the report's
-- data-quality line.
CREATE TABLE rollup_rungs (
    counter_id bigint NOT NULL,
    period     text   NOT NULL,
    rung       text   NOT NULL,
    orders     bigint NOT NULL,
    PRIMARY KEY (counter_id, period, rung)
);
