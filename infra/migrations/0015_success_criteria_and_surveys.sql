-- depends: 0011_device_sequence_restarts
-- Success criteria a trial is judged by (metric, comparison, target), evaluated from live data
-- (trials/criteria.py), and short MAST surveys of staff, residents and relatives per phase.
-- trials.success_criteria (free text) stays: it is what was agreed in words.
CREATE TABLE success_criteria (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trial_id    bigint NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    metric      text NOT NULL CHECK (metric IN (
                    'time_saved_pct', 'occurrences_per_day', 'usage_hours_per_day',
                    'data_completeness_pct', 'payback_months')),
    comparison  text NOT NULL CHECK (comparison IN ('at_least', 'at_most')),
    target      numeric(14, 2) NOT NULL,
    -- The activity a per-activity metric is measured on (time saved, occurrences).
    activity_id bigint REFERENCES activities (id) ON DELETE CASCADE,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((activity_id IS NOT NULL) = (metric IN ('time_saved_pct', 'occurrences_per_day')))
);
CREATE INDEX success_criteria_trial_idx ON success_criteria (trial_id, id);

-- One anonymous questionnaire: who answered (a group, never a person), in which phase, and
-- scores 1-5 per question (questions: trials/surveys.py). No participant is referenced.
CREATE TABLE survey_responses (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trial_id    bigint NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    respondent  text NOT NULL CHECK (respondent IN ('staff', 'resident', 'relative')),
    phase       text NOT NULL CHECK (phase IN ('baseline', 'intervention')),
    answered_on date NOT NULL,
    answers     jsonb NOT NULL CHECK (jsonb_typeof(answers) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX survey_responses_trial_idx ON survey_responses (trial_id, respondent, phase);

GRANT SELECT, INSERT, UPDATE, DELETE ON success_criteria, survey_responses TO ldl_app;
