-- depends: 0009_company_consent_whole_hour 0014_time_saved_trial_period 0016_user_accounts 0017_rollup_refresh_by_the_worker_only
-- One evidence for every reader, and one home for the company rule (README, "Who sees what").
--
-- Trial-level figures — usage of the trial, time saved, the business case, the criteria — are
-- computed once over everything stored (stored only under telemetry consent) and are the same
-- for the coordinator, the evaluator and the company. The company_dashboards scope governs only
-- breakdowns below the trial (by care home, unit or device), which could single out a resident.
--
--   company_dashboard_consent (participant_id, covered)  each participant's company_dashboards
--                             consent, as one multirange (joined once per query, not per row).
--   company_may_see(participant_id, covered, bucket_start, bucket_end)  the rule itself: a row
--                             without a participant (a room or unit device) always; a
--                             participant's row only if that consent covered the whole bucket
--                             (the rollups keep no finer time, so a bucket in which the consent
--                             began or ended is left out: never shown too much).
--
-- Before, the rule was written out three times (trials/trial_rollup.py COMPANY_VISIBLE, the views
-- of 0007 and time_saved_occurrences of 0014); they now all call this function. The trial-level
-- rollup keeps one audience: the 'company' rows, and the queue a consent change filled to redo
-- them, are gone.
--
--   ldl_grafana.usage_trial_hourly               (company_id, bucket, trial_id, readings, events)
--   ldl_grafana.activity_occurrences_trial_daily (company_id, day_start, trial_id, activity_id,
--                                                 activity_name, occurrences)
--   ldl_grafana.time_saved_trial_daily           (company_id, day_start, trial_id, activity_id,
--                                                 activity_name, occurrences, minutes_saved,
--                                                 minutes_saved_low, minutes_saved_high)
-- are the trial-level views the dashboards' trial panels read: no company_visible column, so a
-- company's role reads the same numbers as the coordinator's.

CREATE VIEW company_dashboard_consent AS
SELECT c.participant_id, range_agg(c.valid_during) AS covered
FROM consents c
WHERE 'company_dashboards' = ANY (c.scopes)
GROUP BY c.participant_id;

-- A plain SQL expression, so the planner inlines it into each query that calls it.
CREATE FUNCTION company_may_see(
    participant_id bigint, covered tstzmultirange, bucket_start timestamptz, bucket_end timestamptz
) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT $1 IS NULL OR coalesce($2 @> tstzrange($3, $4, '[)'), false)
$$;

GRANT SELECT ON company_dashboard_consent TO ldl_app, ldl_grafana_owner;

-- ------------------------------------------------------------ the trial-level rollup: one audience
DROP TRIGGER consents_queue_trial_usage_refresh ON consents;
DROP FUNCTION queue_trial_usage_refresh();
DROP TABLE usage_trial_refresh_queue;
DELETE FROM usage_trial_hourly WHERE audience <> 'all';
DELETE FROM usage_trial_events_hourly WHERE audience <> 'all';
ALTER TABLE usage_trial_hourly DROP COLUMN audience;
ALTER TABLE usage_trial_hourly ADD PRIMARY KEY (trial_id, bucket);
ALTER TABLE usage_trial_events_hourly DROP COLUMN audience;
ALTER TABLE usage_trial_events_hourly ADD PRIMARY KEY (trial_id, bucket, event_type);
GRANT SELECT ON usage_trial_hourly, usage_trial_events_hourly TO ldl_grafana_owner;

-- ------------------------------------------------------------------ time saved's occurrences
-- Same columns as 0014; company_visible now from the one rule. A query that does not read it
-- does not join the consent at all (the join is on a unique key and is removed).
CREATE OR REPLACE VIEW time_saved_occurrences AS
SELECT a.trial_id, a.id AS activity_id, e.bucket, e.site_id, e.unit_id, e.device_id,
       e.participant_id,
       company_may_see(e.participant_id, k.covered, e.bucket, e.bucket + interval '1 hour')
           AS company_visible,
       e.events AS occurrences
FROM trial_intervention_periods p
JOIN activities a ON a.trial_id = p.trial_id
JOIN usage_events_hourly e ON e.trial_id = a.trial_id AND e.event_type = a.event_type
LEFT JOIN company_dashboard_consent k ON k.participant_id = e.participant_id
WHERE e.bucket >= date_trunc('hour', p.period_from) AND e.bucket < p.period_until;

-- ------------------------------------------------------------------------- Grafana's views
SET ROLE ldl_grafana_owner;

CREATE OR REPLACE VIEW ldl_grafana.usage_hourly AS
SELECT t.company_id,
       public.company_may_see(u.participant_id, k.covered, u.bucket, u.bucket + interval '1 hour')
           AS company_visible,
       u.bucket, u.trial_id, u.site_id, u.unit_id, u.device_id, u.readings, u.events
FROM public.usage_hourly u
JOIN public.trials t ON t.id = u.trial_id
LEFT JOIN public.company_dashboard_consent k ON k.participant_id = u.participant_id;

CREATE OR REPLACE VIEW ldl_grafana.activity_occurrences_daily AS
SELECT t.company_id,
       public.company_may_see(e.participant_id, k.covered, e.bucket, e.bucket + interval '1 hour')
           AS company_visible,
       date_trunc('day', e.bucket, 'Europe/Copenhagen') AS day_start,
       a.trial_id, a.id AS activity_id, a.name AS activity_name,
       e.site_id, e.unit_id, e.device_id, sum(e.events)::bigint AS occurrences
FROM public.usage_events_hourly e
JOIN public.activities a ON a.trial_id = e.trial_id AND a.event_type = e.event_type
JOIN public.trials t ON t.id = a.trial_id
LEFT JOIN public.company_dashboard_consent k ON k.participant_id = e.participant_id
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;

CREATE VIEW ldl_grafana.usage_trial_hourly AS
SELECT t.company_id, u.bucket, u.trial_id, u.readings, u.events
FROM public.usage_trial_hourly u
JOIN public.trials t ON t.id = u.trial_id;

CREATE VIEW ldl_grafana.activity_occurrences_trial_daily AS
SELECT t.company_id, date_trunc('day', e.bucket, 'Europe/Copenhagen') AS day_start,
       a.trial_id, a.id AS activity_id, a.name AS activity_name,
       sum(e.events)::bigint AS occurrences
FROM public.usage_trial_events_hourly e
JOIN public.activities a ON a.trial_id = e.trial_id AND a.event_type = e.event_type
JOIN public.trials t ON t.id = a.trial_id
GROUP BY 1, 2, 3, 4, 5;

CREATE VIEW ldl_grafana.time_saved_trial_daily AS
SELECT t.company_id, date_trunc('day', o.bucket, 'Europe/Copenhagen') AS day_start,
       o.trial_id, o.activity_id, s.activity_name,
       sum(o.occurrences)::bigint AS occurrences,
       sum(o.occurrences) * s.saved AS minutes_saved,
       sum(o.occurrences) * s.saved_low AS minutes_saved_low,
       sum(o.occurrences) * s.saved_high AS minutes_saved_high
FROM public.time_saved_occurrences o
JOIN public.activity_saving_estimates s ON s.activity_id = o.activity_id
JOIN public.trials t ON t.id = o.trial_id
GROUP BY t.company_id, 2, o.trial_id, o.activity_id, s.activity_name,
         s.saved, s.saved_low, s.saved_high;

CREATE VIEW grafana_coordinator.usage_trial_hourly AS
    SELECT * FROM ldl_grafana.usage_trial_hourly;
CREATE VIEW grafana_coordinator.activity_occurrences_trial_daily AS
    SELECT * FROM ldl_grafana.activity_occurrences_trial_daily;
CREATE VIEW grafana_coordinator.time_saved_trial_daily AS
    SELECT * FROM ldl_grafana.time_saved_trial_daily;

RESET ROLE;
