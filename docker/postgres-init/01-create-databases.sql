-- Run by the postgres image on first start (POSTGRES_DB already created orion).
CREATE DATABASE orion_rfq OWNER orion;
CREATE DATABASE orion_marketdata OWNER orion;
