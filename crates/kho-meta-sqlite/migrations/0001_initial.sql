-- kho metadata, SQLite edition. Times are RFC 3339 text in UTC; JSON documents are text.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE admin_units (
    era          TEXT NOT NULL,          -- '2025' or 'pre2025'
    code         TEXT NOT NULL,          -- GSO code, zero-padded
    level        TEXT NOT NULL,          -- province | district | commune
    name         TEXT NOT NULL,
    full_name    TEXT NOT NULL,
    name_en      TEXT NOT NULL,
    unit_type    TEXT NOT NULL,
    unit_type_en TEXT NOT NULL,
    parent_code  TEXT,
    name_folded  TEXT NOT NULL,          -- lower-case, without diacritics, for search
    PRIMARY KEY (era, code)
);
CREATE INDEX admin_units_parent ON admin_units (era, parent_code);

CREATE TABLE admin_crosswalk (
    old_code TEXT NOT NULL,
    new_code TEXT NOT NULL,
    partial  INTEGER NOT NULL,
    PRIMARY KEY (old_code, new_code)
);

CREATE TABLE agencies (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    code            TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    name_en         TEXT,
    kind            TEXT NOT NULL,
    parent_id       INTEGER REFERENCES agencies (id),
    admin_unit_code TEXT,
    created_at      TEXT NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    email         TEXT,
    agency_id     INTEGER NOT NULL REFERENCES agencies (id),
    role          TEXT NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at  TEXT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);

CREATE TABLE sessions (
    secret_hash TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    csrf_token  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    agency_id    INTEGER NOT NULL REFERENCES agencies (id),
    role         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
);

CREATE TABLE datasets (
    id              TEXT PRIMARY KEY,
    slug            TEXT NOT NULL UNIQUE,
    owner_agency_id INTEGER NOT NULL REFERENCES agencies (id),
    access_level    TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    body            TEXT NOT NULL,       -- the dataset description (JSON)
    search_text     TEXT NOT NULL,       -- folded title, slug and tags
    created_at      TEXT NOT NULL,
    modified_at     TEXT NOT NULL,
    deleted_at      TEXT
);
CREATE INDEX datasets_owner ON datasets (owner_agency_id);

CREATE TABLE dataset_allowed_agencies (
    dataset_id TEXT NOT NULL REFERENCES datasets (id),
    agency_id  INTEGER NOT NULL REFERENCES agencies (id),
    PRIMARY KEY (dataset_id, agency_id)
);

CREATE TABLE resources (
    id          TEXT PRIMARY KEY,
    dataset_id  TEXT NOT NULL REFERENCES datasets (id),
    name        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    body        TEXT NOT NULL,           -- title, description and Table Schema (JSON)
    created_at  TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    UNIQUE (dataset_id, name)
);

CREATE TABLE dataset_revisions (
    dataset_id TEXT NOT NULL REFERENCES datasets (id),
    revision   INTEGER NOT NULL,
    change     TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    snapshot   TEXT NOT NULL,
    PRIMARY KEY (dataset_id, revision)
);

CREATE TABLE dictionary_terms (
    name           TEXT NOT NULL,
    version        INTEGER NOT NULL,
    title          TEXT NOT NULL,
    title_en       TEXT,
    description    TEXT NOT NULL,
    description_en TEXT,
    field_type     TEXT NOT NULL,
    format         TEXT,
    constraints    TEXT NOT NULL,
    refs           TEXT,
    examples       TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    ip          TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);

-- The log is append-only: the database itself refuses to change or remove an entry.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
