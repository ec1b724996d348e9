-- migrate:up
-- Kept so the numbering matches production: the change it held was reverted.

-- migrate:down
