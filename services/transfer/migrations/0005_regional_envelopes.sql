-- The regional topic's messages are read once, when consumed (a transfer opened or a refusal dead-lettered): no
-- projection replays them, so the inbox now keeps their rows without envelopes (shared/migrations/0007). The ones kept
-- before that go too, and with them the blind indexes they held and the index that found them for an erasure.
UPDATE inbox SET envelope = NULL WHERE source NOT LIKE '/union/%' AND envelope IS NOT NULL;
DROP INDEX IF EXISTS inbox_regional_blind_index;
