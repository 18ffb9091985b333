-- Dictionary terms whose values are personal data (Law 91/2025/QH15): a field using one makes
-- its dataset personal, which then cannot be open.
ALTER TABLE dictionary_terms ADD COLUMN personal INTEGER NOT NULL DEFAULT 0;
UPDATE dictionary_terms SET personal = 1
 WHERE name IN ('cccd', 'phone', 'email', 'date_of_birth', 'full_name', 'address_detail');
