-- Grants: users' own Google accounts connected through OAuth 2.0 (PKCE),
-- and the authorizations started and not yet completed. Keep in step with
-- migrations/sqlite.
--
-- calendar_grants: one per (provider, account); the same person
--   reconnecting updates their grant in place (id and created_at kept).
-- account:        the provider's stable account id (Google's `sub`).
-- scopes:         the granted scopes, space-separated (as OAuth writes them).
-- status:         active | reconnect_required | revoked.
-- refresh_token:  sealed by the SecretKeeper, never in clear.
CREATE TABLE calendar_grants (
    id               TEXT PRIMARY KEY,
    provider         TEXT NOT NULL,
    email            TEXT NOT NULL,
    account          TEXT NOT NULL,
    scopes           TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL CHECK (status IN ('active', 'reconnect_required', 'revoked')),
    refresh_token    TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    last_refresh_at  TIMESTAMPTZ,
    last_error       TEXT,
    UNIQUE (provider, account)
);

-- calendar_oauth_states: an authorization found by its `state`, taken
--   (deleted) once by the callback; expired rows are purged by age.
-- verifier: the PKCE code_verifier, sealed by the SecretKeeper.
CREATE TABLE calendar_oauth_states (
    state       TEXT PRIMARY KEY,
    verifier    TEXT NOT NULL,
    login_hint  TEXT,
    return_to   TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX calendar_oauth_states_expires ON calendar_oauth_states (expires_at);
