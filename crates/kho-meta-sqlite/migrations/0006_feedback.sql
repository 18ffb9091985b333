-- Problem reports and data requests from portal visitors, with the agency's answer.
-- `contact` is the only personal data, given by choice; `answered_by` is a username.
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('problem', 'request')),
    dataset_id TEXT,
    agency_id INTEGER REFERENCES agencies (id),
    category TEXT,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    contact TEXT,
    status TEXT NOT NULL DEFAULT 'open',
    answer TEXT,
    answered_by TEXT,
    answered_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX feedback_agency ON feedback (agency_id, status);
CREATE INDEX feedback_dataset ON feedback (dataset_id);
CREATE INDEX feedback_kind ON feedback (kind, id);

-- Star ratings: the stars and the day only, nothing about who rated.
CREATE TABLE dataset_ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id TEXT NOT NULL,
    stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
    day TEXT NOT NULL
);
CREATE INDEX dataset_ratings_dataset ON dataset_ratings (dataset_id);
