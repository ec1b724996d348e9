DELETE FROM wh_warehouses WHERE code IN ('AMS1', 'FRA1', 'LON1', 'DUB1');
