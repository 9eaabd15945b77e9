-- OPERATIONAL zone: quality reports count late records (older than their game's newest
-- observation by more than the allowed lateness) and empty raw records (a slate without games)
-- in their own columns (QualityReport v2).
ALTER TABLE {operational}.quality ADD COLUMN IF NOT EXISTS late bigint NOT NULL DEFAULT 0;
ALTER TABLE {operational}.quality ADD COLUMN IF NOT EXISTS empty bigint NOT NULL DEFAULT 0;
