-- Dead letters that scale (DeadLetter v2, issue #16): a refused part of a raw record points at
-- the record (origin topic, partition, offset) and its part index instead of copying the payload,
-- so original is null for it; a whole-record failure still carries its bytes. Older rows keep
-- theirs and get a null part_index.
ALTER TABLE {operational}.dead_letters ALTER COLUMN original DROP NOT NULL;
ALTER TABLE {operational}.dead_letters ADD COLUMN IF NOT EXISTS part_index integer;
COMMENT ON COLUMN {operational}.dead_letters.original IS
    'Original value bytes of a whole-record failure; null when the row points at its raw record'
    ' (origin_topic, origin_partition, origin_offset): a refused part, or a record over 512 KiB.';
COMMENT ON COLUMN {operational}.dead_letters.part_index IS
    'Index of the refused part among the raw record''s parts; null when the whole record failed.';
