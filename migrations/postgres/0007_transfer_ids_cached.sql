-- A posting draws one transfer id per transfer. Uncached, each draw locked and read the
-- sequence's page and logged it every 32 values: about 3 µs a transfer, a sixth of a
-- posting's time (auto_explain). A cache hands each connection 64 ids at a time. Ids stay
-- unique and increase within a transaction (which the slot history's order relies on); a
-- closed connection's unused ids are skipped, and nothing reads transfer ids as dense.
ALTER TABLE transfers ALTER COLUMN id SET CACHE 64;
