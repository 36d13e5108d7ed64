-- depends: 0007_grafana
-- The trial-level hourly usage rollup: a month of hourly usage for a trial is read from here
-- (720 rows) instead of aggregating the device/participant-level rollup (~200 rows an hour) at
-- request time. Derived from usage_readings_hourly / usage_events_hourly, which have the same
-- names on both paths, by trials/trial_rollup.py. Audience 'all': coordinators and evaluators;
-- 'company': a participant's data counts only while their company_dashboards consent covered
-- the hour's start (the API's rule for company keys).

CREATE TABLE usage_trial_hourly (
    bucket              timestamptz NOT NULL,
    trial_id            bigint NOT NULL,
    audience            text NOT NULL CHECK (audience IN ('all', 'company')),
    readings            bigint NOT NULL,
    events              bigint NOT NULL,
    active_devices      bigint NOT NULL,
    active_participants bigint NOT NULL,
    PRIMARY KEY (trial_id, audience, bucket)
);

CREATE TABLE usage_trial_events_hourly (
    bucket     timestamptz NOT NULL,
    trial_id   bigint NOT NULL,
    audience   text NOT NULL CHECK (audience IN ('all', 'company')),
    event_type text NOT NULL,
    events     bigint NOT NULL,
    PRIMARY KEY (trial_id, audience, bucket, event_type)
);

-- A consent given, changed or withdrawn (possibly backdated) changes what a company may see of
-- past hours: the trial's hours from the earliest time it touches are recomputed at the next
-- refresh.
CREATE TABLE usage_trial_refresh_queue (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trial_id bigint NOT NULL,
    from_ts  timestamptz NOT NULL
);

CREATE FUNCTION queue_trial_usage_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_trial_refresh_queue (trial_id, from_ts)
    SELECT p.trial_id,
           least(CASE WHEN TG_OP <> 'INSERT' THEN OLD.valid_from END,
                 CASE WHEN TG_OP <> 'DELETE' THEN NEW.valid_from END)
    FROM participants p
    WHERE p.id = CASE WHEN TG_OP = 'DELETE' THEN OLD.participant_id ELSE NEW.participant_id END;
    RETURN NULL;
END
$$;

CREATE TRIGGER consents_queue_trial_usage_refresh AFTER INSERT OR UPDATE OR DELETE ON consents
    FOR EACH ROW EXECUTE FUNCTION queue_trial_usage_refresh();

GRANT SELECT, INSERT, UPDATE, DELETE ON usage_trial_hourly, usage_trial_events_hourly,
    usage_trial_refresh_queue TO ldl_app;
