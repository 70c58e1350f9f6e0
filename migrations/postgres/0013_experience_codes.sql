-- Experience ids are opaque strings: an OCTO product id such as "6b90-tour", a Leap id its
-- number written out. `code` is the id the API, the config and the partner speak; the integer
-- `id` stays the key every foreign key uses, assigned by the database for new experiences.
ALTER TABLE experiences ADD COLUMN code TEXT;
UPDATE experiences SET code = id::text;
ALTER TABLE experiences ALTER COLUMN code SET NOT NULL;
ALTER TABLE experiences ADD CONSTRAINT experiences_code_key UNIQUE (code);
CREATE SEQUENCE experiences_id_seq OWNED BY experiences.id;
SELECT setval('experiences_id_seq', COALESCE((SELECT MAX(id) FROM experiences), 0) + 1, false);
ALTER TABLE experiences ALTER COLUMN id SET DEFAULT nextval('experiences_id_seq');
