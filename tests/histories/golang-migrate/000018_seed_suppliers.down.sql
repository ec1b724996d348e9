DELETE FROM wh_suppliers WHERE country IN ('IE', 'DE', 'GB');
