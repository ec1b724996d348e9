ALTER TABLE wh_orders
    ADD CONSTRAINT wh_orders_status_check CHECK (status IN ('new', 'paid', 'shipped')) NOT VALID;
ALTER TABLE wh_orders VALIDATE CONSTRAINT wh_orders_status_check;
