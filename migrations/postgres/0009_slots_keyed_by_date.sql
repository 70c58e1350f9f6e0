-- A slot is a provider slot id on one date: a partner that reuses an id on another date gets a
-- second slot, instead of moving the first (and its ledger history) to the new date.
ALTER TABLE slots DROP CONSTRAINT slots_experience_id_provider_slot_id_key;
ALTER TABLE slots ADD CONSTRAINT slots_experience_date_provider_slot_key
    UNIQUE (experience_id, service_date, provider_slot_id);
