-- depends: 0002_timescale
-- The ingest worker: cache invalidation by NOTIFY, sequence tracking and the gaps it finds.

-- Any change to what routing or the consent gate reads tells the workers to reload at once.
CREATE FUNCTION ldl_notify_registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ldl_registry_changed', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER deployments_notify_registry AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON deployments FOR EACH STATEMENT EXECUTE FUNCTION ldl_notify_registry_changed();
CREATE TRIGGER consents_notify_registry AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON consents FOR EACH STATEMENT EXECUTE FUNCTION ldl_notify_registry_changed();
CREATE TRIGGER devices_notify_registry AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON devices FOR EACH STATEMENT EXECUTE FUNCTION ldl_notify_registry_changed();

-- The highest sequence number stored per device and channel; updated in the same transaction as
-- the telemetry, so a crash or a redelivery never reports a gap twice or misses one.
CREATE TABLE device_sequences (
    device_id  text NOT NULL,
    channel    text NOT NULL CHECK (channel IN ('readings', 'events', 'status')),
    last_seq   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, channel)
);

-- Messages a device numbered but that never arrived: missing data, as opposed to no activity.
CREATE TABLE telemetry_gaps (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id    text NOT NULL,
    channel      text NOT NULL CHECK (channel IN ('readings', 'events', 'status')),
    expected_seq bigint NOT NULL,
    received_seq bigint NOT NULL,
    gap_size     bigint NOT NULL CHECK (gap_size > 0),
    trial_id     bigint,          -- the deployment at the time of the message after the gap
    ts           timestamptz,     -- that message's own (device) time
    detected_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (received_seq > expected_seq)
);
CREATE INDEX telemetry_gaps_trial_idx ON telemetry_gaps (trial_id, detected_at);
CREATE INDEX telemetry_gaps_device_idx ON telemetry_gaps (device_id, channel, detected_at);

-- Dead letters of one trial are found through the devices deployed in it.
CREATE INDEX dead_letters_device_idx ON dead_letters (device_id, received_at);
