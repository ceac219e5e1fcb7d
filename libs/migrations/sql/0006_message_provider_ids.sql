-- Every provider message an outbound message became, each with its own delivery status.
--
-- A reply part longer than the channel takes (WhatsApp and Telegram 4,096 characters, an SMS
-- body 1,600) leaves as several provider messages, each with its own id and its own status
-- webhooks. messages.provider_message_id keeps the first id (the loop guard and older readers
-- look there); this table keeps them all, so a status of any chunk finds its message.
--
-- The message's delivery_status is the least advanced of its chunks' (sent < delivered <
-- read), and failed as soon as one chunk failed: "delivered" means the contact has the whole
-- text the agent wrote, "read" that all of it was read, and a lost chunk leaves the contact
-- with half a sentence, which is a failure to whoever reads the history.
--
-- Rows sent before this table existed are adopted on their first status (delivery.statuses),
-- so nothing is backfilled here.

CREATE FUNCTION delivery_status_rank(status text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE coalesce(status, 'pending')
        WHEN 'pending' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2
        WHEN 'read' THEN 3 WHEN 'failed' THEN 4 END
$$;

CREATE TABLE message_provider_ids (
    tenant_id text NOT NULL,
    channel_id text NOT NULL,
    provider_message_id text NOT NULL CHECK (char_length(provider_message_id) BETWEEN 1 AND 256),
    message_id text NOT NULL,
    -- Sending order within the message, from 0.
    chunk integer NOT NULL CHECK (chunk >= 0),
    delivery_status text NOT NULL DEFAULT 'sent'
        CHECK (delivery_status IN ('sent', 'delivered', 'read', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, channel_id, provider_message_id),
    UNIQUE (tenant_id, message_id, chunk),
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels ON DELETE CASCADE
);
