-- depends: 0002_timescale
-- Evaluation: usage rollups that dashboards and the API read instead of raw telemetry.
--
-- Created by 0006b_evaluation_rollups.py with the SAME names and columns on both paths:
-- TimescaleDB -> continuous aggregates with refresh policies (+ compression and retention of raw
-- telemetry); plain PostgreSQL -> rollup tables kept fresh by trials.evaluation_repository
-- .refresh_rollups (run by run_rollup_scheduler) and a DELETE-based retention job.
--
-- Grain of every rollup: one row per (bucket, trial_id, site_id, unit_id, device_id,
-- participant_id[, event_type]). Group coarser yourself: sum() the counts, and
-- count(DISTINCT device_id) / count(DISTINCT participant_id) for active devices / participants
-- (participant_id is NULL for room and unit devices). Hour buckets are UTC hours; day buckets start
-- at local midnight in Europe/Copenhagen. Erasing a participant removes their rows here too.
--
--   usage_readings_hourly (bucket timestamptz, trial_id bigint, site_id bigint, unit_id bigint,
--                          device_id text, participant_id bigint, readings bigint)
--   usage_readings_daily  (same columns, day buckets)
--   usage_events_hourly   (bucket timestamptz, trial_id bigint, site_id bigint, unit_id bigint,
--                          device_id text, participant_id bigint, event_type text, events bigint)
--   usage_events_daily    (same columns, day buckets)
--   usage_hourly   VIEW   (bucket, trial_id, site_id, unit_id, device_id, participant_id,
--                          readings bigint, events bigint)   -- readings and events side by side
--   usage_daily    VIEW   (same columns, day buckets)
--   activity_occurrences_daily VIEW
--                         (day_start timestamptz, trial_id bigint, activity_id bigint,
--                          activity_name text, event_type text, site_id bigint, unit_id bigint,
--                          device_id text, participant_id bigint, occurrences bigint)
--                          -- events whose event_type is the activity's event_type in that trial

-- How far the plain-path refresh job has read telemetry (by received_at).
CREATE TABLE rollup_watermarks (
    name           text PRIMARY KEY,
    received_until timestamptz NOT NULL
);

-- Time ranges whose continuous aggregates must be re-materialised outside a transaction
-- (TimescaleDB path: an erase records its range here; the scheduler refreshes and deletes it).
CREATE TABLE rollup_refresh_requests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    reason       text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    CHECK (window_end > window_start)
);
