-- depends: 0008_usage_trial_hourly
-- The API's company rule becomes the Grafana views' rule: a participant's hour counts for a
-- company only if their company_dashboards consent covered the whole hour, not just its start
-- (trials/trial_rollup.py COMPANY_VISIBLE). Every trial's stored hours are queued for the
-- rollup scheduler to recompute under the new rule.
INSERT INTO usage_trial_refresh_queue (trial_id, from_ts)
SELECT trial_id, min(bucket) FROM usage_trial_hourly GROUP BY trial_id;
