-- depends: 0011_device_sequence_restarts
-- People sign in to the web app with an account; machines keep their API keys. A session is a
-- row here (only its token's hash), so signing out or disabling an account ends it at once.
-- Failed sign-ins are kept for throttling (access/accounts.py decides how many are too many).
CREATE TABLE user_accounts (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    role          text NOT NULL CHECK (role IN ('coordinator', 'evaluator', 'company')),
    company_id    bigint REFERENCES companies (id),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz,
    CONSTRAINT user_accounts_company_iff_company_role
        CHECK ((role = 'company') = (company_id IS NOT NULL))
);
CREATE UNIQUE INDEX user_accounts_email_key ON user_accounts (email);

CREATE TABLE web_sessions (
    token_hash   text PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES user_accounts (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);

CREATE TABLE login_failures (
    id      bigserial PRIMARY KEY,
    email   text NOT NULL,
    client  text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email_idx ON login_failures (email, at);
CREATE INDEX login_failures_client_idx ON login_failures (client, at);

GRANT SELECT, INSERT, UPDATE, DELETE ON user_accounts, web_sessions, login_failures TO ldl_app;
GRANT USAGE, SELECT ON SEQUENCE user_accounts_id_seq, login_failures_id_seq TO ldl_app;
