CREATE TYPE wh_stock_status AS ENUM ('in_stock', 'reserved', 'shipped');
