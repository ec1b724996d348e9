-- Up Migration
-- Kept so the numbering matches production: the change it held was reverted.

-- Down Migration
