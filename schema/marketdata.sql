CREATE FUNCTION public.update_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
        BEGIN
            NEW.updated_at = NOW();
            RETURN NEW;
        END;
        $$;

COMMENT ON FUNCTION public.update_updated_at() IS 'created by marketdata 002_venues_instruments_snapshots';

CREATE TABLE public.instruments (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    symbol character varying(64) NOT NULL,
    isin character varying(12),
    asset_class character varying(20) NOT NULL,
    currency character varying(3) NOT NULL,
    venue_id uuid NOT NULL,
    name character varying(255) NOT NULL,
    status character varying(20) DEFAULT 'active'::character varying NOT NULL,
    lot_size numeric(28,8),
    tick_size numeric(28,10),
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT instruments_asset_class_check CHECK (((asset_class)::text = ANY ((ARRAY['equity'::character varying, 'fx'::character varying, 'fixed_income'::character varying, 'etf'::character varying, 'future'::character varying, 'option'::character varying, 'crypto'::character varying])::text[]))),
    CONSTRAINT instruments_currency_check CHECK (((currency)::text ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT instruments_isin_check CHECK (((isin)::text ~ '^[A-Z]{2}[A-Z0-9]{9}[0-9]$'::text)),
    CONSTRAINT instruments_lot_size_check CHECK ((lot_size > (0)::numeric)),
    CONSTRAINT instruments_status_check CHECK (((status)::text = ANY ((ARRAY['active'::character varying, 'suspended'::character varying, 'delisted'::character varying])::text[]))),
    CONSTRAINT instruments_tick_size_check CHECK ((tick_size > (0)::numeric))
);

CREATE TABLE public.market_data_snapshots (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    instrument_id uuid NOT NULL,
    venue_id uuid,
    bid numeric(28,10),
    ask numeric(28,10),
    last numeric(28,10),
    bid_size numeric(28,8),
    ask_size numeric(28,8),
    last_size numeric(28,8),
    snapshot_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL
)
PARTITION BY RANGE (snapshot_at);

CREATE TABLE public.market_data_snapshots_2026_11 (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    instrument_id uuid NOT NULL,
    venue_id uuid,
    bid numeric(28,10),
    ask numeric(28,10),
    last numeric(28,10),
    bid_size numeric(28,8),
    ask_size numeric(28,8),
    last_size numeric(28,8),
    snapshot_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.market_data_snapshots_2026_12 (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    instrument_id uuid NOT NULL,
    venue_id uuid,
    bid numeric(28,10),
    ask numeric(28,10),
    last numeric(28,10),
    bid_size numeric(28,8),
    ask_size numeric(28,8),
    last_size numeric(28,8),
    snapshot_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.market_data_snapshots_2027_01 (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    instrument_id uuid NOT NULL,
    venue_id uuid,
    bid numeric(28,10),
    ask numeric(28,10),
    last numeric(28,10),
    bid_size numeric(28,8),
    ask_size numeric(28,8),
    last_size numeric(28,8),
    snapshot_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.market_data_snapshots_2027_02 (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    instrument_id uuid NOT NULL,
    venue_id uuid,
    bid numeric(28,10),
    ask numeric(28,10),
    last numeric(28,10),
    bid_size numeric(28,8),
    ask_size numeric(28,8),
    last_size numeric(28,8),
    snapshot_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.market_data_snapshots_2027_03 (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    instrument_id uuid NOT NULL,
    venue_id uuid,
    bid numeric(28,10),
    ask numeric(28,10),
    last numeric(28,10),
    bid_size numeric(28,8),
    ask_size numeric(28,8),
    last_size numeric(28,8),
    snapshot_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.market_data_snapshots_default (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    instrument_id uuid NOT NULL,
    venue_id uuid,
    bid numeric(28,10),
    ask numeric(28,10),
    last numeric(28,10),
    bid_size numeric(28,8),
    ask_size numeric(28,8),
    last_size numeric(28,8),
    snapshot_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.outbox_events (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    event_type character varying(255) NOT NULL,
    event_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    correlation_id uuid,
    entity_type character varying(100),
    entity_id character varying(255),
    payload jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    published_at timestamp with time zone,
    retry_count integer DEFAULT 0,
    last_error text
);

CREATE TABLE public.processed_events (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    tenant_id uuid NOT NULL,
    consumer_group character varying(255) NOT NULL,
    event_id uuid NOT NULL,
    event_type character varying(255) NOT NULL,
    processed_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.venues (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    mic character varying(4) NOT NULL,
    operating_mic character varying(4) NOT NULL,
    name character varying(255) NOT NULL,
    country character varying(2) NOT NULL,
    timezone character varying(64) NOT NULL,
    status character varying(20) DEFAULT 'active'::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT venues_country_check CHECK (((country)::text ~ '^[A-Z]{2}$'::text)),
    CONSTRAINT venues_mic_check CHECK (((mic)::text ~ '^[A-Z0-9]{4}$'::text)),
    CONSTRAINT venues_operating_mic_check CHECK (((operating_mic)::text ~ '^[A-Z0-9]{4}$'::text)),
    CONSTRAINT venues_status_check CHECK (((status)::text = ANY ((ARRAY['active'::character varying, 'inactive'::character varying])::text[])))
);

ALTER TABLE ONLY public.market_data_snapshots ATTACH PARTITION public.market_data_snapshots_2026_11 FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00');

ALTER TABLE ONLY public.market_data_snapshots ATTACH PARTITION public.market_data_snapshots_2026_12 FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00');

ALTER TABLE ONLY public.market_data_snapshots ATTACH PARTITION public.market_data_snapshots_2027_01 FOR VALUES FROM ('2027-01-01 00:00:00+00') TO ('2027-02-01 00:00:00+00');

ALTER TABLE ONLY public.market_data_snapshots ATTACH PARTITION public.market_data_snapshots_2027_02 FOR VALUES FROM ('2027-02-01 00:00:00+00') TO ('2027-03-01 00:00:00+00');

ALTER TABLE ONLY public.market_data_snapshots ATTACH PARTITION public.market_data_snapshots_2027_03 FOR VALUES FROM ('2027-03-01 00:00:00+00') TO ('2027-04-01 00:00:00+00');

ALTER TABLE ONLY public.market_data_snapshots ATTACH PARTITION public.market_data_snapshots_default DEFAULT;

ALTER TABLE ONLY public.instruments
    ADD CONSTRAINT instruments_isin_key UNIQUE (isin);

ALTER TABLE ONLY public.instruments
    ADD CONSTRAINT instruments_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.instruments
    ADD CONSTRAINT instruments_venue_id_symbol_key UNIQUE (venue_id, symbol);

ALTER TABLE ONLY public.market_data_snapshots
    ADD CONSTRAINT market_data_snapshots_pkey PRIMARY KEY (instrument_id, snapshot_at, id);

ALTER TABLE ONLY public.market_data_snapshots_2026_11
    ADD CONSTRAINT market_data_snapshots_2026_11_pkey PRIMARY KEY (instrument_id, snapshot_at, id);

ALTER TABLE ONLY public.market_data_snapshots_2026_12
    ADD CONSTRAINT market_data_snapshots_2026_12_pkey PRIMARY KEY (instrument_id, snapshot_at, id);

ALTER TABLE ONLY public.market_data_snapshots_2027_01
    ADD CONSTRAINT market_data_snapshots_2027_01_pkey PRIMARY KEY (instrument_id, snapshot_at, id);

ALTER TABLE ONLY public.market_data_snapshots_2027_02
    ADD CONSTRAINT market_data_snapshots_2027_02_pkey PRIMARY KEY (instrument_id, snapshot_at, id);

ALTER TABLE ONLY public.market_data_snapshots_2027_03
    ADD CONSTRAINT market_data_snapshots_2027_03_pkey PRIMARY KEY (instrument_id, snapshot_at, id);

ALTER TABLE ONLY public.market_data_snapshots_default
    ADD CONSTRAINT market_data_snapshots_default_pkey PRIMARY KEY (instrument_id, snapshot_at, id);

ALTER TABLE ONLY public.outbox_events
    ADD CONSTRAINT outbox_events_event_id_key UNIQUE (event_id);

ALTER TABLE ONLY public.outbox_events
    ADD CONSTRAINT outbox_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.processed_events
    ADD CONSTRAINT processed_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.processed_events
    ADD CONSTRAINT processed_events_tenant_id_consumer_group_event_id_key UNIQUE (tenant_id, consumer_group, event_id);

ALTER TABLE ONLY public.venues
    ADD CONSTRAINT venues_mic_key UNIQUE (mic);

ALTER TABLE ONLY public.venues
    ADD CONSTRAINT venues_pkey PRIMARY KEY (id);

CREATE INDEX idx_instruments_asset_class ON public.instruments USING btree (asset_class);

CREATE INDEX idx_instruments_symbol ON public.instruments USING btree (symbol);

CREATE INDEX idx_outbox_tenant ON public.outbox_events USING btree (tenant_id);

CREATE INDEX idx_outbox_unpublished ON public.outbox_events USING btree (created_at) WHERE (published_at IS NULL);

CREATE INDEX idx_processed_events_lookup ON public.processed_events USING btree (tenant_id, consumer_group, event_id);

ALTER INDEX public.market_data_snapshots_pkey ATTACH PARTITION public.market_data_snapshots_2026_11_pkey;

ALTER INDEX public.market_data_snapshots_pkey ATTACH PARTITION public.market_data_snapshots_2026_12_pkey;

ALTER INDEX public.market_data_snapshots_pkey ATTACH PARTITION public.market_data_snapshots_2027_01_pkey;

ALTER INDEX public.market_data_snapshots_pkey ATTACH PARTITION public.market_data_snapshots_2027_02_pkey;

ALTER INDEX public.market_data_snapshots_pkey ATTACH PARTITION public.market_data_snapshots_2027_03_pkey;

ALTER INDEX public.market_data_snapshots_pkey ATTACH PARTITION public.market_data_snapshots_default_pkey;

CREATE TRIGGER instruments_updated_at BEFORE UPDATE ON public.instruments FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();

CREATE TRIGGER venues_updated_at BEFORE UPDATE ON public.venues FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();

ALTER TABLE ONLY public.instruments
    ADD CONSTRAINT instruments_venue_id_fkey FOREIGN KEY (venue_id) REFERENCES public.venues(id);
