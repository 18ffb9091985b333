-- What publishing measured on each version's data (đúng, đủ, sạch), as JSON.
ALTER TABLE resource_versions ADD COLUMN quality TEXT NOT NULL DEFAULT '{}';
