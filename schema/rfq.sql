CREATE FUNCTION public.update_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
        BEGIN
            NEW.updated_at = NOW();
            RETURN NEW;
        END;
        $$;

COMMENT ON FUNCTION public.update_updated_at() IS 'created by rfq 002_rfqs_quotes_and_history';

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

CREATE TABLE public.rfq_quotes (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    rfq_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    dealer_id uuid NOT NULL,
    price numeric(28,10) NOT NULL,
    quantity numeric(28,8) NOT NULL,
    state character varying(20) DEFAULT 'active'::character varying NOT NULL,
    valid_until timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT rfq_quotes_quantity_check CHECK ((quantity > (0)::numeric)),
    CONSTRAINT rfq_quotes_state_check CHECK (((state)::text = ANY ((ARRAY['active'::character varying, 'accepted'::character varying, 'rejected'::character varying, 'withdrawn'::character varying, 'expired'::character varying])::text[])))
);

CREATE TABLE public.rfq_state_history (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    rfq_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    from_state character varying(20),
    to_state character varying(20) NOT NULL,
    changed_by uuid,
    reason text,
    changed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT rfq_state_history_from_state_check CHECK (((from_state)::text = ANY ((ARRAY['draft'::character varying, 'open'::character varying, 'quoted'::character varying, 'accepted'::character varying, 'rejected'::character varying, 'expired'::character varying, 'cancelled'::character varying])::text[]))),
    CONSTRAINT rfq_state_history_to_state_check CHECK (((to_state)::text = ANY ((ARRAY['draft'::character varying, 'open'::character varying, 'quoted'::character varying, 'accepted'::character varying, 'rejected'::character varying, 'expired'::character varying, 'cancelled'::character varying])::text[])))
);

CREATE TABLE public.rfqs (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    tenant_id uuid NOT NULL,
    requester_id uuid NOT NULL,
    instrument_id uuid NOT NULL,
    instrument_symbol character varying(64) NOT NULL,
    side character varying(4) NOT NULL,
    quantity numeric(28,8) NOT NULL,
    limit_price numeric(28,10),
    currency character varying(3) NOT NULL,
    state character varying(20) DEFAULT 'open'::character varying NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT rfqs_currency_check CHECK (((currency)::text ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT rfqs_quantity_check CHECK ((quantity > (0)::numeric)),
    CONSTRAINT rfqs_side_check CHECK (((side)::text = ANY ((ARRAY['buy'::character varying, 'sell'::character varying])::text[]))),
    CONSTRAINT rfqs_state_check CHECK (((state)::text = ANY ((ARRAY['draft'::character varying, 'open'::character varying, 'quoted'::character varying, 'accepted'::character varying, 'rejected'::character varying, 'expired'::character varying, 'cancelled'::character varying])::text[])))
);

ALTER TABLE ONLY public.outbox_events
    ADD CONSTRAINT outbox_events_event_id_key UNIQUE (event_id);

ALTER TABLE ONLY public.outbox_events
    ADD CONSTRAINT outbox_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.processed_events
    ADD CONSTRAINT processed_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.processed_events
    ADD CONSTRAINT processed_events_tenant_id_consumer_group_event_id_key UNIQUE (tenant_id, consumer_group, event_id);

ALTER TABLE ONLY public.rfq_quotes
    ADD CONSTRAINT rfq_quotes_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.rfq_state_history
    ADD CONSTRAINT rfq_state_history_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.rfqs
    ADD CONSTRAINT rfqs_pkey PRIMARY KEY (id);

CREATE INDEX idx_outbox_tenant ON public.outbox_events USING btree (tenant_id);

CREATE INDEX idx_outbox_unpublished ON public.outbox_events USING btree (created_at) WHERE (published_at IS NULL);

CREATE INDEX idx_processed_events_lookup ON public.processed_events USING btree (tenant_id, consumer_group, event_id);

CREATE INDEX idx_rfq_quotes_rfq ON public.rfq_quotes USING btree (rfq_id, created_at);

CREATE INDEX idx_rfq_state_history_rfq ON public.rfq_state_history USING btree (rfq_id, changed_at);

CREATE INDEX idx_rfqs_open_expiry ON public.rfqs USING btree (expires_at) WHERE ((state)::text = ANY ((ARRAY['open'::character varying, 'quoted'::character varying])::text[]));

CREATE INDEX idx_rfqs_tenant_created ON public.rfqs USING btree (tenant_id, created_at DESC);

CREATE INDEX idx_rfqs_tenant_open_expiry ON public.rfqs USING btree (tenant_id, expires_at) WHERE ((state)::text = ANY ((ARRAY['open'::character varying, 'quoted'::character varying])::text[]));

CREATE UNIQUE INDEX uq_rfq_quotes_accepted ON public.rfq_quotes USING btree (rfq_id) WHERE ((state)::text = 'accepted'::text);

CREATE UNIQUE INDEX uq_rfq_quotes_active_dealer ON public.rfq_quotes USING btree (rfq_id, dealer_id) WHERE ((state)::text = 'active'::text);

CREATE TRIGGER rfq_quotes_updated_at BEFORE UPDATE ON public.rfq_quotes FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();

CREATE TRIGGER rfqs_updated_at BEFORE UPDATE ON public.rfqs FOR EACH ROW EXECUTE FUNCTION public.update_updated_at();

ALTER TABLE ONLY public.rfq_quotes
    ADD CONSTRAINT rfq_quotes_rfq_id_fkey FOREIGN KEY (rfq_id) REFERENCES public.rfqs(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.rfq_state_history
    ADD CONSTRAINT rfq_state_history_rfq_id_fkey FOREIGN KEY (rfq_id) REFERENCES public.rfqs(id) ON DELETE CASCADE;
