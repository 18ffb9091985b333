-- Uploaded files waiting for a decision, and the immutable versions of each table.

CREATE TABLE uploads (
    id            TEXT PRIMARY KEY,
    dataset_id    TEXT NOT NULL REFERENCES datasets (id),
    resource_id   TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    status        TEXT NOT NULL,          -- checked | published | rejected
    rows          INTEGER NOT NULL,
    valid_rows    INTEGER NOT NULL,
    invalid_rows  INTEGER NOT NULL,
    report        TEXT NOT NULL,          -- the validation report (JSON)
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    version       INTEGER
);
CREATE INDEX uploads_resource ON uploads (resource_id, created_at);

CREATE TABLE resource_versions (
    resource_id      TEXT NOT NULL,
    version          INTEGER NOT NULL,
    dataset_id       TEXT NOT NULL REFERENCES datasets (id),
    rows             INTEGER NOT NULL,
    bytes            INTEGER NOT NULL,
    schema_hash      TEXT NOT NULL,
    schema           TEXT NOT NULL,
    object_key       TEXT NOT NULL,
    quarantine_key   TEXT,
    quarantined_rows INTEGER NOT NULL,
    rows_added       INTEGER NOT NULL,
    rows_removed     INTEGER NOT NULL,
    rows_changed     INTEGER NOT NULL,
    upload_id        TEXT,
    published_by     TEXT NOT NULL,
    published_at     TEXT NOT NULL,
    PRIMARY KEY (resource_id, version)
);

-- Versions are immutable.
CREATE TRIGGER resource_versions_no_update BEFORE UPDATE ON resource_versions
BEGIN SELECT RAISE(ABORT, 'versions are immutable'); END;
