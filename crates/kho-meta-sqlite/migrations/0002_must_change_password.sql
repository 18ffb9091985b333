-- A password set by someone else (the generated first password, or one an administrator set)
-- must be replaced by its owner at the next sign-in to the web pages.
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
