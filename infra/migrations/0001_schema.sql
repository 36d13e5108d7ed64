-- Schema v1: the registry, consent, devices, deployments, telemetry, dead letters, audit, keys.
-- Telemetry tables are plain here; 0002 turns them into hypertables where TimescaleDB exists.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- The role the application acts as (SET ROLE after connecting). Cluster-wide, so created only once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ldl_app') THEN
        CREATE ROLE ldl_app NOLOGIN;
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT ldl_app TO %I', current_user);
    END IF;
END
$$;

-- ---------------------------------------------------------------- registry
CREATE TABLE companies (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (length(btrim(name)) > 0),
    cvr           text CHECK (cvr ~ '^[0-9]{8}$'),
    contact_email text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sites (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (length(btrim(name)) > 0),
    municipality text NOT NULL,
    address      text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE units (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id    bigint NOT NULL REFERENCES sites (id),
    name       text NOT NULL CHECK (length(btrim(name)) > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, name),
    UNIQUE (site_id, id)  -- lets other tables insist a unit belongs to their site
);

CREATE TABLE trials (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id          bigint NOT NULL REFERENCES companies (id),
    title               text NOT NULL CHECK (length(btrim(title)) > 0),
    product             text NOT NULL,
    need                text NOT NULL DEFAULT '',          -- behovsafklaring
    collaboration_form  text NOT NULL CHECK (collaboration_form IN
                            ('living_design_lab', 'opi', 'opp', 'operating_agreement', 'purchase')),
    status              text NOT NULL DEFAULT 'draft' CHECK (status IN
                            ('draft', 'baseline', 'running', 'evaluating', 'concluded', 'stopped')),
    baseline_from       timestamptz,
    baseline_until      timestamptz,
    trial_from          timestamptz,
    trial_until         timestamptz,
    success_criteria    text NOT NULL DEFAULT '',
    staff_hourly_cost   numeric(12, 2) CHECK (staff_hourly_cost >= 0),
    currency            text NOT NULL DEFAULT 'DKK',
    decision            text CHECK (decision IN ('adopt', 'scale', 'stop')),
    decision_rationale  text,
    decided_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (baseline_until IS NULL OR baseline_from IS NULL OR baseline_until > baseline_from),
    CHECK (trial_until IS NULL OR trial_from IS NULL OR trial_until > trial_from),
    CHECK ((decision IS NULL) = (decided_at IS NULL))
);
CREATE INDEX trials_company_idx ON trials (company_id);
CREATE INDEX trials_status_idx ON trials (status);

CREATE TABLE trial_sites (
    trial_id bigint NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    site_id  bigint NOT NULL REFERENCES sites (id),
    PRIMARY KEY (trial_id, site_id)
);
CREATE INDEX trial_sites_site_idx ON trial_sites (site_id);

CREATE TABLE trial_units (
    trial_id bigint NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    unit_id  bigint NOT NULL REFERENCES units (id),
    PRIMARY KEY (trial_id, unit_id)
);

CREATE TABLE trial_status_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trial_id    bigint NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    from_status text,
    to_status   text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text
);

CREATE TABLE trial_costs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trial_id    bigint NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    category    text NOT NULL CHECK (category IN
                    ('devices', 'licences', 'training', 'staff_time', 'other')),
    amount      numeric(14, 2) NOT NULL CHECK (amount >= 0),
    recurring   boolean NOT NULL DEFAULT false,  -- per year when true, one-off otherwise
    description text NOT NULL DEFAULT ''
);
CREATE INDEX trial_costs_trial_idx ON trial_costs (trial_id);

-- ------------------------------------------------------- participants, consent
-- A participant is a pseudonym only: no CPR number, no name (the service refuses both).
CREATE TABLE participants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trial_id    bigint NOT NULL REFERENCES trials (id),
    pseudonym   text NOT NULL CHECK (pseudonym ~ '^[A-Za-z0-9_.-]{2,40}$'),
    site_id     bigint NOT NULL REFERENCES sites (id),
    unit_id     bigint,
    enrolled_at timestamptz NOT NULL DEFAULT now(),
    left_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (trial_id, pseudonym),
    UNIQUE (trial_id, id),  -- lets deployments insist a participant belongs to their trial
    FOREIGN KEY (site_id, unit_id) REFERENCES units (site_id, id)
);

-- One row per consent version. A version is active on [valid_from, valid_until); a newer version
-- or a withdrawal closes it. History is never overwritten, and versions never overlap.
CREATE TABLE consents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    participant_id  bigint NOT NULL REFERENCES participants (id) ON DELETE CASCADE,
    version         integer NOT NULL CHECK (version > 0),
    scopes          text[] NOT NULL
                        CHECK (scopes <@ ARRAY['telemetry', 'company_dashboards', 'evaluation']),
    given_by        text NOT NULL CHECK (given_by IN ('participant', 'proxy')),
    proxy_relation  text,
    evidence_ref    text NOT NULL CHECK (length(btrim(evidence_ref)) > 0),
    valid_from      timestamptz NOT NULL,
    valid_until     timestamptz,
    ended_by        text CHECK (ended_by IN ('superseded', 'withdrawn')),
    withdrawal_mode text CHECK (withdrawal_mode IN ('erase', 'keep')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    valid_during    tstzrange GENERATED ALWAYS AS (tstzrange(valid_from, valid_until, '[)')) STORED,
    UNIQUE (participant_id, version),
    CHECK ((given_by = 'proxy') = (proxy_relation IS NOT NULL)),
    CHECK (valid_until IS NULL OR valid_until > valid_from),
    CHECK ((valid_until IS NULL) = (ended_by IS NULL)),
    CHECK ((ended_by = 'withdrawn') = (withdrawal_mode IS NOT NULL)),
    EXCLUDE USING gist (participant_id WITH =, valid_during WITH &&)
);

-- ---------------------------------------------------- activities, observations
CREATE TABLE activities (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trial_id    bigint NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(btrim(name)) > 0),
    description text NOT NULL DEFAULT '',
    -- The device event type that counts one occurrence of this activity done with the technology.
    event_type  text,
    UNIQUE (trial_id, name),
    UNIQUE (trial_id, id)
);

CREATE TABLE observations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trial_id         bigint NOT NULL,
    activity_id      bigint NOT NULL,
    phase            text NOT NULL CHECK (phase IN ('baseline', 'intervention')),
    duration_minutes numeric(8, 2) NOT NULL CHECK (duration_minutes > 0),
    staff_role       text NOT NULL,
    observed_at      timestamptz NOT NULL,
    site_id          bigint REFERENCES sites (id),
    unit_id          bigint REFERENCES units (id),
    note             text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (trial_id, activity_id) REFERENCES activities (trial_id, id) ON DELETE CASCADE
);
CREATE INDEX observations_activity_idx ON observations (activity_id, phase);

-- ------------------------------------------------- devices, gateways, deployments
CREATE TABLE device_types (
    code              text PRIMARY KEY CHECK (code ~ '^[a-z0-9_]{1,40}$'),
    name              text NOT NULL,
    metrics           text[] NOT NULL DEFAULT '{}',
    event_types       text[] NOT NULL DEFAULT '{}',
    expected_interval interval NOT NULL DEFAULT '5 minutes' CHECK (expected_interval > '0'),
    description       text NOT NULL DEFAULT ''
);

-- Devices and gateways share one namespace: the id is also the MQTT username.
CREATE TABLE devices (
    id            text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    kind          text NOT NULL DEFAULT 'device' CHECK (kind IN ('device', 'gateway')),
    device_type   text NOT NULL REFERENCES device_types (code),
    company_id    bigint NOT NULL REFERENCES companies (id),
    gateway_id    text REFERENCES devices (id),
    serial        text,
    firmware      text,
    secret_hash   text,
    registered_at timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK (gateway_id IS NULL OR kind = 'device')
);
CREATE INDEX devices_gateway_idx ON devices (gateway_id);
CREATE INDEX devices_company_idx ON devices (company_id);

CREATE TABLE deployments (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id      text NOT NULL REFERENCES devices (id),
    trial_id       bigint NOT NULL REFERENCES trials (id),
    site_id        bigint NOT NULL REFERENCES sites (id),
    unit_id        bigint,
    participant_id bigint,
    valid_from     timestamptz NOT NULL,
    valid_until    timestamptz,
    note           text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    valid_during   tstzrange GENERATED ALWAYS AS (tstzrange(valid_from, valid_until, '[)')) STORED,
    CHECK (valid_until IS NULL OR valid_until > valid_from),
    FOREIGN KEY (site_id, unit_id) REFERENCES units (site_id, id),
    FOREIGN KEY (trial_id, participant_id) REFERENCES participants (trial_id, id),
    CONSTRAINT deployments_no_overlap EXCLUDE USING gist (device_id WITH =, valid_during WITH &&)
);
CREATE INDEX deployments_trial_idx ON deployments (trial_id);
CREATE INDEX deployments_participant_idx ON deployments (participant_id);

CREATE TABLE device_health (
    device_id      text PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    last_seen_at   timestamptz,
    last_status_at timestamptz,
    battery        real CHECK (battery BETWEEN 0 AND 100),
    rssi           real,
    firmware       text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- ------------------------------------------------------------------ telemetry
-- Routing keys (trial, site, unit, participant) are copied in at ingest: the deployment valid at
-- the reading's own time. No foreign keys: the natural key is what keeps redelivery idempotent.
CREATE TABLE telemetry_readings (
    ts             timestamptz NOT NULL,
    device_id      text NOT NULL,
    metric         text NOT NULL,
    value          double precision NOT NULL,
    trial_id       bigint NOT NULL,
    site_id        bigint NOT NULL,
    unit_id        bigint,
    participant_id bigint,
    seq            bigint,
    received_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT telemetry_readings_natural_key UNIQUE (device_id, metric, ts)
);
CREATE INDEX telemetry_readings_trial_ts_idx ON telemetry_readings (trial_id, ts);
CREATE INDEX telemetry_readings_participant_idx ON telemetry_readings (participant_id, ts)
    WHERE participant_id IS NOT NULL;

CREATE TABLE telemetry_events (
    ts             timestamptz NOT NULL,
    device_id      text NOT NULL,
    event_type     text NOT NULL,
    duration_s     double precision,
    attrs          jsonb NOT NULL DEFAULT '{}',
    trial_id       bigint NOT NULL,
    site_id        bigint NOT NULL,
    unit_id        bigint,
    participant_id bigint,
    seq            bigint,
    received_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT telemetry_events_natural_key UNIQUE (device_id, event_type, ts)
);
CREATE INDEX telemetry_events_trial_ts_idx ON telemetry_events (trial_id, ts);
CREATE INDEX telemetry_events_participant_idx ON telemetry_events (participant_id, ts)
    WHERE participant_id IS NOT NULL;

CREATE TABLE dead_letters (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    topic        text NOT NULL,
    device_id    text,
    reason       text NOT NULL,
    detail       text NOT NULL DEFAULT '',
    excerpt      text NOT NULL DEFAULT '',
    payload_size integer NOT NULL DEFAULT 0
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at);
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason, received_at);

-- Readings refused by the consent gate are counted here, never stored.
CREATE TABLE consent_drops (
    day      date NOT NULL,
    trial_id bigint NOT NULL,
    reason   text NOT NULL,
    count    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, trial_id, reason)
);

-- ------------------------------------------------------------- audit, API keys
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,
    actor_role  text NOT NULL,
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_id   text,
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id);

-- Append-only even for a superuser who forgets to SET ROLE; the grants below bind the app role.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('coordinator', 'evaluator', 'company')),
    company_id  bigint REFERENCES companies (id),
    key_prefix  text NOT NULL UNIQUE,
    key_hash    text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK ((role = 'company') = (company_id IS NOT NULL))
);

-- ---------------------------------------------------------------- privileges
GRANT USAGE ON SCHEMA public TO ldl_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ldl_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ldl_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ldl_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ldl_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM ldl_app;

-- The catalogue of device types the registry starts with.
INSERT INTO device_types (code, name, metrics, event_types, expected_interval, description) VALUES
  ('gateway', 'Gateway', '{}', '{}', '5 minutes', 'Relays its child devices'' messages'),
  ('sensor_bed', 'Sensor bed', '{heart_rate,respiration_rate,movement}',
   '{bed_exit,bed_entry,night_check_avoided}', '1 minute', 'Mattress sensor: presence, vitals, exits'),
  ('medicine_dispenser', 'Medicine dispenser', '{doses_remaining}',
   '{dose_dispensed,dose_taken,dose_missed}', '15 minutes', 'Automatic pill dispenser'),
  ('fall_sensor', 'Fall sensor', '{movement}', '{fall_detected,alarm_acknowledged}', '5 minutes',
   'Radar or accelerometer fall detection'),
  ('door_sensor', 'Door sensor', '{}', '{door_open,door_close}', '15 minutes', 'Door contact'),
  ('smart_toilet', 'Smart toilet', '{water_used_l}', '{wash_dry_cycle}', '15 minutes',
   'Washing and drying toilet'),
  ('cleaning_robot', 'Cleaning robot', '{area_m2,battery_level}', '{cleaning_run}', '10 minutes',
   'Floor cleaning robot'),
  ('stocking_aid', 'Compression-stocking aid', '{}', '{stocking_on,stocking_off}', '30 minutes',
   'Aid for putting on compression stockings');
