DROP INDEX wh_items_reserved_idx;
