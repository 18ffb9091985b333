-- Views and downloads per dataset and day: counts only, no address, user or cookie.
CREATE TABLE dataset_usage (
    dataset_id TEXT NOT NULL,
    day TEXT NOT NULL,
    views INTEGER NOT NULL DEFAULT 0,
    downloads INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset_id, day)
);
