-- depends: 0004_devices 0005_ingest 0006b_evaluation_rollups
-- Grafana reads the database through views only. Isolation is by role and view, not by row-level
-- security (which does not reach TimescaleDB chunks, compression or continuous aggregates):
--
--   ldl_grafana          all-companies views for dashboards, with company_id and, where rows can
--                        carry a participant's data, company_visible (that participant's
--                        company_dashboards consent covered the whole hour). Granted to no login.
--   grafana_coordinator  the coordinator's read-only schema: the same views, all trials, plus
--                        portfolio and data-quality views.
--   company_<id>         made by grafana/roles.py per company: security-barrier views of
--                        ldl_grafana filtered to company_id = <id> AND company_visible.
--
-- Every view is owned by ldl_grafana_owner (NOLOGIN). No login role is ever a member of it; login
-- roles get USAGE on their one schema and SELECT on its views, nothing else.
--
-- Consent is exact to the hour: the rollups keep no reading times finer than their hour bucket, so
-- an hour in which company_dashboards consent started or ended is left out (never shown too much).
--
--   ldl_grafana.trial_info        (company_id, trial_id, title, product, status, baseline_from,
--                                  baseline_until, trial_from, trial_until)
--   ldl_grafana.trial_places      (company_id, trial_id, site_id, site_name, unit_id, unit_name)
--   ldl_grafana.usage_hourly      (company_id, company_visible, bucket, trial_id, site_id, unit_id,
--                                  device_id, readings, events)
--   ldl_grafana.usage_daily       (same columns, Europe/Copenhagen day buckets)
--   ldl_grafana.activity_occurrences_daily (company_id, company_visible, day_start, trial_id,
--                                  activity_id, activity_name, site_id, unit_id, device_id,
--                                  occurrences)
--   ldl_grafana.activity_time_stats (company_id, trial_id, activity_id, activity_name, baseline_n,
--                                  baseline_mean, intervention_n, intervention_mean,
--                                  saved_per_occurrence, saved_low, saved_high)  -- minutes, 95 %
--   ldl_grafana.time_saved_daily  (company_id, company_visible, day_start, trial_id, activity_id,
--                                  activity_name, site_id, unit_id, occurrences, minutes_saved,
--                                  minutes_saved_low, minutes_saved_high)
--   ldl_grafana.device_health     (company_id, trial_id, site_id, unit_id, device_id, device_type,
--                                  last_seen_at, battery, rssi, firmware, online, expected_interval)
--   ldl_grafana.data_completeness_daily (company_id, day_start, trial_id, site_id, unit_id,
--                                  device_id, hours_with_data, hours_deployed)

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ldl_grafana_owner') THEN
        CREATE ROLE ldl_grafana_owner NOLOGIN;
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT ldl_grafana_owner TO %I', current_user);
    END IF;
END
$$;

-- The owner reads what the views are built on; nobody can log in as it or inherit from it.
GRANT USAGE ON SCHEMA public TO ldl_grafana_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO ldl_grafana_owner;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO ldl_grafana_owner;

-- Passwords of the login roles the sync manages, for the Grafana data sources it writes.
-- Readable by the migration owner (superuser) only: not in public, no grants.
CREATE SCHEMA ldl_grafana_private;
REVOKE ALL ON SCHEMA ldl_grafana_private FROM PUBLIC;
CREATE TABLE ldl_grafana_private.role_credentials (
    role_name  text PRIMARY KEY,
    password   text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE SCHEMA ldl_grafana AUTHORIZATION ldl_grafana_owner;
CREATE SCHEMA grafana_coordinator AUTHORIZATION ldl_grafana_owner;
REVOKE ALL ON SCHEMA ldl_grafana, grafana_coordinator FROM PUBLIC;

SET ROLE ldl_grafana_owner;

CREATE VIEW ldl_grafana.trial_info AS
SELECT t.company_id, t.id AS trial_id, t.title, t.product, t.status,
       t.baseline_from, t.baseline_until, t.trial_from, t.trial_until
FROM public.trials t;

CREATE VIEW ldl_grafana.trial_places AS
SELECT t.company_id, ts.trial_id, s.id AS site_id, s.name AS site_name,
       u.id AS unit_id, u.name AS unit_name
FROM public.trial_sites ts
JOIN public.trials t ON t.id = ts.trial_id
JOIN public.sites s ON s.id = ts.site_id
LEFT JOIN public.units u ON u.site_id = s.id
    AND (NOT EXISTS (SELECT 1 FROM public.trial_units tu WHERE tu.trial_id = ts.trial_id)
         OR EXISTS (SELECT 1 FROM public.trial_units tu
                    WHERE tu.trial_id = ts.trial_id AND tu.unit_id = u.id));

-- One row per rollup row; the consent test runs once per participant-hour.
CREATE VIEW ldl_grafana.usage_hourly AS
SELECT t.company_id,
       (u.participant_id IS NULL OR coalesce((
            SELECT range_agg(c.valid_during) FROM public.consents c
            WHERE c.participant_id = u.participant_id
              AND 'company_dashboards' = ANY (c.scopes)
        ) @> tstzrange(u.bucket, u.bucket + interval '1 hour', '[)'), false)) AS company_visible,
       u.bucket, u.trial_id, u.site_id, u.unit_id, u.device_id, u.readings, u.events
FROM public.usage_hourly u
JOIN public.trials t ON t.id = u.trial_id;

-- Days are built from hours so the consent test keeps its hour precision.
CREATE VIEW ldl_grafana.usage_daily AS
SELECT company_id, company_visible,
       date_trunc('day', bucket, 'Europe/Copenhagen') AS bucket,
       trial_id, site_id, unit_id, device_id,
       sum(readings)::bigint AS readings, sum(events)::bigint AS events
FROM ldl_grafana.usage_hourly
GROUP BY 1, 2, 3, 4, 5, 6, 7;

CREATE VIEW ldl_grafana.activity_occurrences_daily AS
SELECT t.company_id,
       (e.participant_id IS NULL OR coalesce((
            SELECT range_agg(c.valid_during) FROM public.consents c
            WHERE c.participant_id = e.participant_id
              AND 'company_dashboards' = ANY (c.scopes)
        ) @> tstzrange(e.bucket, e.bucket + interval '1 hour', '[)'), false)) AS company_visible,
       date_trunc('day', e.bucket, 'Europe/Copenhagen') AS day_start,
       a.trial_id, a.id AS activity_id, a.name AS activity_name,
       e.site_id, e.unit_id, e.device_id, sum(e.events)::bigint AS occurrences
FROM public.usage_events_hourly e
JOIN public.activities a ON a.trial_id = e.trial_id AND a.event_type = e.event_type
JOIN public.trials t ON t.id = a.trial_id
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;

-- Minutes saved per occurrence = baseline mean − with-technology mean of the time-motion
-- observations, with the same 95 % Welch t interval as trials/evaluation.py (which is the
-- reference; tests compare). SQL has no t quantile, so it is the Cornish-Fisher expansion
-- (Abramowitz & Stegun 26.7.5) of z = 1.959964 in the Welch degrees of freedom. Like the API, no
-- estimate until each phase has 5 observations.
CREATE VIEW ldl_grafana.activity_time_stats AS
WITH phases AS (
    SELECT o.activity_id,
           count(*) FILTER (WHERE o.phase = 'baseline') AS baseline_n,
           avg(o.duration_minutes) FILTER (WHERE o.phase = 'baseline') AS baseline_mean,
           var_samp(o.duration_minutes) FILTER (WHERE o.phase = 'baseline') AS baseline_var,
           count(*) FILTER (WHERE o.phase = 'intervention') AS intervention_n,
           avg(o.duration_minutes) FILTER (WHERE o.phase = 'intervention') AS intervention_mean,
           var_samp(o.duration_minutes) FILTER (WHERE o.phase = 'intervention') AS intervention_var
    FROM public.observations o
    GROUP BY o.activity_id
), welch AS (
    SELECT p.*,
           p.baseline_var / p.baseline_n AS va, p.intervention_var / p.intervention_n AS vb
    FROM phases p
    WHERE p.baseline_n >= 5 AND p.intervention_n >= 5
), estimates AS (
    SELECT w.activity_id, w.baseline_mean - w.intervention_mean AS saved,
           sqrt(w.va + w.vb) AS se,
           CASE WHEN w.va + w.vb > 0 THEN ((w.va + w.vb) ^ 2
                / (w.va ^ 2 / (w.baseline_n - 1) + w.vb ^ 2 / (w.intervention_n - 1)))::float8
           END AS df
    FROM welch w
), quantiles AS (
    SELECT e.*, 1.959964 + (1.959964 ^ 3 + 1.959964) / 4 / e.df
             + (5 * 1.959964 ^ 5 + 16 * 1.959964 ^ 3 + 3 * 1.959964) / 96 / e.df ^ 2
             + (3 * 1.959964 ^ 7 + 19 * 1.959964 ^ 5 + 17 * 1.959964 ^ 3 - 15 * 1.959964)
               / 384 / e.df ^ 3
             + (79 * 1.959964 ^ 9 + 776 * 1.959964 ^ 7 + 1482 * 1.959964 ^ 5
                - 1920 * 1.959964 ^ 3 - 945 * 1.959964) / 92160 / e.df ^ 4 AS t
    FROM estimates e
)
SELECT t.company_id, a.trial_id, a.id AS activity_id, a.name AS activity_name,
       p.baseline_n, round(p.baseline_mean, 2) AS baseline_mean,
       p.intervention_n, round(p.intervention_mean, 2) AS intervention_mean,
       round(q.saved, 2) AS saved_per_occurrence,
       round((q.saved - coalesce(q.t, 0) * q.se)::numeric, 2) AS saved_low,
       round((q.saved + coalesce(q.t, 0) * q.se)::numeric, 2) AS saved_high
FROM public.activities a
JOIN public.trials t ON t.id = a.trial_id
JOIN phases p ON p.activity_id = a.id
LEFT JOIN quantiles q ON q.activity_id = a.id;

CREATE VIEW ldl_grafana.time_saved_daily AS
SELECT o.company_id, o.company_visible, o.day_start, o.trial_id, o.activity_id, o.activity_name,
       o.site_id, o.unit_id, sum(o.occurrences)::bigint AS occurrences,
       sum(o.occurrences) * s.saved_per_occurrence AS minutes_saved,
       sum(o.occurrences) * s.saved_low AS minutes_saved_low,
       sum(o.occurrences) * s.saved_high AS minutes_saved_high
FROM ldl_grafana.activity_occurrences_daily o
JOIN ldl_grafana.activity_time_stats s ON s.activity_id = o.activity_id
GROUP BY o.company_id, o.company_visible, o.day_start, o.trial_id, o.activity_id,
         o.activity_name, o.site_id, o.unit_id,
         s.saved_per_occurrence, s.saved_low, s.saved_high;

-- The device's own health, not a participant's data: no participant column, no consent test.
CREATE VIEW ldl_grafana.device_health AS
SELECT t.company_id, h.trial_id, h.site_id, h.unit_id, h.device_id, h.device_type,
       h.last_seen_at, h.battery, h.rssi, h.firmware, h.online, h.expected_interval
FROM public.device_health_status h
JOIN public.trials t ON t.id = h.trial_id
WHERE h.kind = 'device';

-- Hours in which a deployed device delivered anything, against the hours it was deployed.
-- A presence count per device and day: device health, not a participant's data.
CREATE VIEW ldl_grafana.data_completeness_daily AS
WITH deployed_hours AS (
    SELECT d.trial_id, d.site_id, d.unit_id, d.device_id, hour
    FROM public.deployments d
    CROSS JOIN LATERAL generate_series(
        date_trunc('hour', d.valid_from),
        date_trunc('hour', least(coalesce(d.valid_until, now()), now()) - interval '1 microsecond'),
        interval '1 hour') AS hour
    WHERE d.valid_from < now()
), delivered AS (
    SELECT DISTINCT u.trial_id, u.device_id, u.bucket AS hour FROM public.usage_hourly u
)
SELECT t.company_id, date_trunc('day', h.hour, 'Europe/Copenhagen') AS day_start,
       h.trial_id, h.site_id, h.unit_id, h.device_id,
       count(x.hour) AS hours_with_data, count(*) AS hours_deployed
FROM deployed_hours h
JOIN public.trials t ON t.id = h.trial_id
LEFT JOIN delivered x ON x.trial_id = h.trial_id AND x.device_id = h.device_id AND x.hour = h.hour
GROUP BY 1, 2, 3, 4, 5, 6;

-- ------------------------------------------------------------- the coordinator's schema
CREATE VIEW grafana_coordinator.trial_info AS SELECT * FROM ldl_grafana.trial_info;
CREATE VIEW grafana_coordinator.trial_places AS SELECT * FROM ldl_grafana.trial_places;
CREATE VIEW grafana_coordinator.usage_hourly AS SELECT * FROM ldl_grafana.usage_hourly;
CREATE VIEW grafana_coordinator.usage_daily AS SELECT * FROM ldl_grafana.usage_daily;
CREATE VIEW grafana_coordinator.activity_occurrences_daily AS
    SELECT * FROM ldl_grafana.activity_occurrences_daily;
CREATE VIEW grafana_coordinator.activity_time_stats AS SELECT * FROM ldl_grafana.activity_time_stats;
CREATE VIEW grafana_coordinator.time_saved_daily AS SELECT * FROM ldl_grafana.time_saved_daily;
CREATE VIEW grafana_coordinator.device_health AS SELECT * FROM ldl_grafana.device_health;
CREATE VIEW grafana_coordinator.data_completeness_daily AS
    SELECT * FROM ldl_grafana.data_completeness_daily;

CREATE VIEW grafana_coordinator.trial_portfolio AS
SELECT t.id AS trial_id, t.title, c.name AS company_name, t.product, t.status,
       t.collaboration_form, t.trial_from, t.trial_until, t.decision,
       (SELECT count(*) FROM public.participants p
        WHERE p.trial_id = t.id AND p.left_at IS NULL) AS participants,
       (SELECT count(*) FROM public.deployments d
        WHERE d.trial_id = t.id AND d.valid_during @> now()) AS devices_deployed,
       (SELECT count(*) FROM public.trial_sites s WHERE s.trial_id = t.id) AS sites
FROM public.trials t
JOIN public.companies c ON c.id = t.company_id;

CREATE VIEW grafana_coordinator.dead_letters AS
SELECT received_at, reason, topic, device_id, payload_size FROM public.dead_letters;

CREATE VIEW grafana_coordinator.telemetry_gaps AS
SELECT detected_at, ts, trial_id, device_id, channel, gap_size FROM public.telemetry_gaps;

CREATE VIEW grafana_coordinator.consent_drops AS
SELECT day, trial_id, reason, count FROM public.consent_drops;

-- Ingest lag needs each row's arrival time; bounded to two days so no panel scans long ranges.
CREATE VIEW grafana_coordinator.ingest_lag_recent AS
SELECT received_at, trial_id, 'readings' AS channel,
       extract(epoch FROM received_at - ts) AS lag_seconds
FROM public.telemetry_readings WHERE received_at > now() - interval '2 days'
UNION ALL
SELECT received_at, trial_id, 'events', extract(epoch FROM received_at - ts)
FROM public.telemetry_events WHERE received_at > now() - interval '2 days';

RESET ROLE;
