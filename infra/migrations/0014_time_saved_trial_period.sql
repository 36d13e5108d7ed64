-- depends: 0011_device_sequence_restarts
-- Time saved has one definition, here, that the API (trials/evaluation_repository.py) and the
-- Grafana views both read. Before, ldl_grafana.time_saved_daily counted every event of an
-- activity's type, the baseline period's included, while the API counted the trial period only
-- (Python), so a company's dashboard showed more hours than the API for the same range.
--
--   trial_intervention_periods  (trial_id, period_from, period_until) the period whose device
--                               events count as occurrences with the technology: from trial_from
--                               to trial_until, or to now while it runs; no row before it starts.
--   time_saved_occurrences      (trial_id, activity_id, bucket, site_id, unit_id, device_id,
--                               participant_id, company_visible, occurrences) the device events
--                               mapped to each activity, per hour, in that period. The first hour
--                               counts whole (the rollups keep no finer time). company_visible is
--                               the company rule of trials/trial_rollup.py COMPANY_VISIBLE.
--   activity_saving_estimates   (trial_id, activity_id, activity_name, phases' n, mean, variance,
--                               saved, saved_low, saved_high) minutes per occurrence, unrounded,
--                               for the Grafana views. The API computes the same point estimate
--                               from the same observations in trials/evaluation.py (exact t
--                               quantile there; this one is Cornish-Fisher, tests compare).
--
-- ldl_grafana.activity_time_stats and ldl_grafana.time_saved_daily keep their columns; they now
-- read these views, and time saved is occurrences × the unrounded estimate, as in the API.

CREATE VIEW trial_intervention_periods AS
SELECT t.id AS trial_id, t.trial_from AS period_from,
       least(coalesce(t.trial_until, 'infinity'::timestamptz), now()) AS period_until
FROM trials t
WHERE t.trial_from < now();

-- The company rule joins each participant's company_dashboards consent once, as one range, rather
-- than a subquery per row (ten times faster over a month of a 200-bed trial); a query that does
-- not read company_visible does not join it at all.
CREATE VIEW time_saved_occurrences AS
SELECT a.trial_id, a.id AS activity_id, e.bucket, e.site_id, e.unit_id, e.device_id,
       e.participant_id,
       (e.participant_id IS NULL
        OR coalesce(k.covered @> tstzrange(e.bucket, e.bucket + interval '1 hour', '[)'), false))
           AS company_visible,
       e.events AS occurrences
FROM trial_intervention_periods p
JOIN activities a ON a.trial_id = p.trial_id
JOIN usage_events_hourly e ON e.trial_id = a.trial_id AND e.event_type = a.event_type
LEFT JOIN (SELECT c.participant_id, range_agg(c.valid_during) AS covered FROM consents c
           WHERE 'company_dashboards' = ANY (c.scopes) GROUP BY c.participant_id) k
    ON k.participant_id = e.participant_id
WHERE e.bucket >= date_trunc('hour', p.period_from) AND e.bucket < p.period_until;

-- Minutes saved per occurrence = baseline mean − with-technology mean, with a 95 % Welch t
-- interval. SQL has no t quantile, so it is the Cornish-Fisher expansion (Abramowitz & Stegun
-- 26.7.5) of z = 1.959964 in the Welch degrees of freedom. Like the API, no estimate until each
-- phase has 5 observations (saved is then null).
CREATE VIEW activity_saving_estimates AS
WITH phases AS (
    SELECT o.activity_id,
           count(*) FILTER (WHERE o.phase = 'baseline') AS baseline_n,
           avg(o.duration_minutes) FILTER (WHERE o.phase = 'baseline') AS baseline_mean,
           var_samp(o.duration_minutes) FILTER (WHERE o.phase = 'baseline') AS baseline_var,
           count(*) FILTER (WHERE o.phase = 'intervention') AS intervention_n,
           avg(o.duration_minutes) FILTER (WHERE o.phase = 'intervention') AS intervention_mean,
           var_samp(o.duration_minutes) FILTER (WHERE o.phase = 'intervention') AS intervention_var
    FROM observations o
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
SELECT a.trial_id, a.id AS activity_id, a.name AS activity_name,
       p.baseline_n, p.baseline_mean, p.intervention_n, p.intervention_mean,
       q.saved,
       (q.saved - coalesce(q.t, 0) * q.se)::numeric AS saved_low,
       (q.saved + coalesce(q.t, 0) * q.se)::numeric AS saved_high
FROM activities a
JOIN phases p ON p.activity_id = a.id
LEFT JOIN quantiles q ON q.activity_id = a.id;

-- The API reads these as ldl_app, the Grafana views as their owner.
GRANT SELECT ON trial_intervention_periods, time_saved_occurrences, activity_saving_estimates
    TO ldl_app, ldl_grafana_owner;

SET ROLE ldl_grafana_owner;

CREATE OR REPLACE VIEW ldl_grafana.activity_time_stats AS
SELECT t.company_id, s.trial_id, s.activity_id, s.activity_name,
       s.baseline_n, round(s.baseline_mean, 2) AS baseline_mean,
       s.intervention_n, round(s.intervention_mean, 2) AS intervention_mean,
       round(s.saved, 2) AS saved_per_occurrence,
       round(s.saved_low, 2) AS saved_low,
       round(s.saved_high, 2) AS saved_high
FROM public.activity_saving_estimates s
JOIN public.trials t ON t.id = s.trial_id;

-- Days are local (Europe/Copenhagen) and built from hours, so the consent test and the trial
-- period keep their hour precision.
CREATE OR REPLACE VIEW ldl_grafana.time_saved_daily AS
SELECT t.company_id, o.company_visible, date_trunc('day', o.bucket, 'Europe/Copenhagen') AS day_start,
       o.trial_id, o.activity_id, s.activity_name, o.site_id, o.unit_id,
       sum(o.occurrences)::bigint AS occurrences,
       sum(o.occurrences) * s.saved AS minutes_saved,
       sum(o.occurrences) * s.saved_low AS minutes_saved_low,
       sum(o.occurrences) * s.saved_high AS minutes_saved_high
FROM public.time_saved_occurrences o
JOIN public.activity_saving_estimates s ON s.activity_id = o.activity_id
JOIN public.trials t ON t.id = o.trial_id
GROUP BY t.company_id, o.company_visible, 3, o.trial_id, o.activity_id, s.activity_name,
         o.site_id, o.unit_id, s.saved, s.saved_low, s.saved_high;

RESET ROLE;
