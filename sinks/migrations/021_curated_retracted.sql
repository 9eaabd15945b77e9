-- CURATED zone: results a late record corrected or withdrew (curated schemas v2). A correction
-- updates the row with its key; a withdrawal (retracted = true) deletes it, so the column stays
-- false on every stored row and exists because every Avro field has a column.
ALTER TABLE {curated}.line_velocity ADD COLUMN IF NOT EXISTS retracted boolean NOT NULL DEFAULT false;
ALTER TABLE {curated}.steam_moves ADD COLUMN IF NOT EXISTS retracted boolean NOT NULL DEFAULT false;
ALTER TABLE {curated}.sharp_signals ADD COLUMN IF NOT EXISTS retracted boolean NOT NULL DEFAULT false;
ALTER TABLE {curated}.consensus ADD COLUMN IF NOT EXISTS retracted boolean NOT NULL DEFAULT false;
ALTER TABLE {curated}.feature_vectors ADD COLUMN IF NOT EXISTS retracted boolean NOT NULL DEFAULT false;
