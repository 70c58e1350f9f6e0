-- Experience ids are opaque strings: an OCTO product id such as "6b90-tour", a Leap id its
-- number written out. `code` is the id the API, the config and the partner speak; the integer
-- `id` stays the key every foreign key uses, assigned by the database for new experiences.
-- Every insert names its code; the column cannot be NOT NULL here without a default.
ALTER TABLE experiences ADD COLUMN code TEXT;
UPDATE experiences SET code = CAST(id AS TEXT);
CREATE UNIQUE INDEX experiences_by_code ON experiences (code);
