-- The initial schema: tenants and their channels, contacts, conversations, messages and turns;
-- workflow state, facts and semantic memory; the tool-call audit and the event archive.
--
-- Keys are the ids the event contract carries (text, minted by atende or the provider), scoped
-- by tenant: every table has tenant_id, and every foreign key includes it, so a row can never
-- point at another tenant's row. Deleting a tenant, or a contact, deletes what hangs off it.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE tenants (
    tenant_id text PRIMARY KEY CHECK (char_length(tenant_id) BETWEEN 1 AND 128),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 256),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE channels (
    tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    channel_id text NOT NULL
        CHECK (channel_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' AND char_length(channel_id) <= 128),
    provider text NOT NULL
        CHECK (provider IN ('whatsapp', 'twilio', 'telegram', 'chatwoot', 'generic')),
    -- The provider's own id of the account (WhatsApp phone number id, Telegram bot id, Twilio
    -- number, Chatwoot inbox): how an inbound webhook finds its tenant and channel.
    external_id text NOT NULL CHECK (char_length(external_id) BETWEEN 1 AND 256),
    name text,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, channel_id),
    UNIQUE (provider, external_id)
);

CREATE TABLE contacts (
    tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    contact_id text NOT NULL DEFAULT gen_random_uuid()::text
        CHECK (char_length(contact_id) BETWEEN 1 AND 256),
    provider text NOT NULL
        CHECK (provider IN ('whatsapp', 'twilio', 'telegram', 'chatwoot', 'generic')),
    -- Who the contact is at the provider (WhatsApp wa_id, Telegram user id, phone number...).
    provider_contact_id text NOT NULL CHECK (char_length(provider_contact_id) BETWEEN 1 AND 256),
    display_name text,
    phone text CHECK (phone ~ '^\+[1-9][0-9]{1,14}$'),
    locale text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, contact_id),
    UNIQUE (tenant_id, provider, provider_contact_id)
);

CREATE TABLE conversations (
    tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    conversation_id text NOT NULL DEFAULT gen_random_uuid()::text
        CHECK (char_length(conversation_id) BETWEEN 1 AND 256),
    channel_id text NOT NULL,
    contact_id text NOT NULL,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'human')),
    assigned_to text,
    -- Highest inbound seq accepted and highest fencing token issued: both only grow.
    last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    last_fencing_token bigint NOT NULL DEFAULT 0 CHECK (last_fencing_token >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    PRIMARY KEY (tenant_id, conversation_id),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts ON DELETE CASCADE,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
-- At most one conversation not closed per contact and channel: concurrent webhooks of a new
-- contact cannot open two.
CREATE UNIQUE INDEX conversations_active_uq
    ON conversations (tenant_id, channel_id, contact_id) WHERE status <> 'closed';
CREATE INDEX conversations_contact_idx ON conversations (tenant_id, contact_id, created_at);
CREATE INDEX conversations_assigned_idx
    ON conversations (tenant_id, assigned_to) WHERE assigned_to IS NOT NULL;

CREATE TABLE turns (
    tenant_id text NOT NULL,
    turn_id text NOT NULL CHECK (char_length(turn_id) BETWEEN 1 AND 128),
    conversation_id text NOT NULL,
    fencing_token bigint NOT NULL CHECK (fencing_token >= 1),
    status text NOT NULL DEFAULT 'opened'
        CHECK (status IN ('opened', 'completed', 'superseded', 'handed_off', 'failed')),
    agent_profile text,
    first_seq bigint NOT NULL CHECK (first_seq >= 1),
    last_seq bigint NOT NULL,
    -- Why a turn ended other than completed (handoff note, failure), for operators.
    note text,
    opened_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    PRIMARY KEY (tenant_id, turn_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations ON DELETE CASCADE,
    UNIQUE (tenant_id, conversation_id, fencing_token),
    CHECK (last_seq >= first_seq),
    CHECK ((status = 'opened') = (closed_at IS NULL)),
    CHECK (closed_at IS NULL OR closed_at >= opened_at)
);
-- At most one open turn per conversation (DESIGN: turns): a new one opens only after the
-- previous one is closed or superseded, in the same transaction.
CREATE UNIQUE INDEX turns_one_open_uq
    ON turns (tenant_id, conversation_id) WHERE status = 'opened';

CREATE TABLE messages (
    tenant_id text NOT NULL,
    message_id text NOT NULL DEFAULT gen_random_uuid()::text
        CHECK (char_length(message_id) BETWEEN 1 AND 256),
    conversation_id text NOT NULL,
    channel_id text NOT NULL,
    direction text NOT NULL CHECK (direction IN ('in', 'out')),
    -- The provider's message id (wamid, MessageSid...): set on every inbound message, and on
    -- an outbound one once the provider accepted it.
    provider_message_id text CHECK (char_length(provider_message_id) BETWEEN 1 AND 256),
    -- Inbound order within the conversation, assigned by the ingress.
    seq bigint CHECK (seq >= 1),
    -- The id of the reply an outbound message delivers: a redelivered reply never sends twice.
    reply_id text CHECK (char_length(reply_id) BETWEEN 1 AND 128),
    turn_id text,
    fencing_token bigint CHECK (fencing_token >= 1),
    kind text NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 32),
    body jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(body) = 'object'),
    delivery_status text
        CHECK (delivery_status IN ('pending', 'sent', 'delivered', 'read', 'failed')),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, message_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, turn_id) REFERENCES turns,
    CHECK (
        (direction = 'in' AND provider_message_id IS NOT NULL AND seq IS NOT NULL
            AND reply_id IS NULL AND delivery_status IS NULL)
        OR (direction = 'out' AND seq IS NULL)
    )
);
-- A provider message is stored once per channel, however often its webhook is retried.
CREATE UNIQUE INDEX messages_provider_message_uq
    ON messages (tenant_id, channel_id, provider_message_id);
CREATE UNIQUE INDEX messages_reply_uq ON messages (tenant_id, reply_id);
CREATE UNIQUE INDEX messages_seq_uq ON messages (tenant_id, conversation_id, seq);
CREATE INDEX messages_conversation_idx ON messages (tenant_id, conversation_id, created_at);
CREATE INDEX messages_turn_idx ON messages (tenant_id, turn_id) WHERE turn_id IS NOT NULL;

CREATE TABLE workflow_state (
    tenant_id text NOT NULL,
    conversation_id text NOT NULL,
    flow text NOT NULL CHECK (char_length(flow) BETWEEN 1 AND 128),
    step text NOT NULL CHECK (char_length(step) BETWEEN 1 AND 128),
    data jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    -- Optimistic concurrency: an update names the version it read and bumps it.
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- The turn's token that last wrote it: a stale turn's write is refused.
    fencing_token bigint NOT NULL DEFAULT 0 CHECK (fencing_token >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversation_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations ON DELETE CASCADE
);

CREATE TABLE facts (
    tenant_id text NOT NULL,
    contact_id text NOT NULL,
    key text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 128),
    value jsonb NOT NULL,
    -- Where the fact came from (e.g. conversation, operator, import) and how sure it is.
    source text NOT NULL CHECK (char_length(source) BETWEEN 1 AND 64),
    source_conversation_id text,
    confidence real NOT NULL DEFAULT 1.0 CHECK (confidence BETWEEN 0.0 AND 1.0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, contact_id, key),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts ON DELETE CASCADE
);

CREATE TABLE memory_chunks (
    chunk_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    source_kind text NOT NULL CHECK (source_kind IN ('document', 'summary')),
    -- A document's key in the knowledge base, or what a summary summarizes.
    document_key text NOT NULL CHECK (char_length(document_key) BETWEEN 1 AND 512),
    chunk_index integer NOT NULL CHECK (chunk_index >= 0),
    contact_id text,
    conversation_id text,
    content text NOT NULL CHECK (char_length(content) >= 1),
    tags text[] NOT NULL DEFAULT '{}',
    -- Hex SHA-256 of the content: unchanged chunks are not embedded again.
    content_sha256 text NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    -- Null until the embedder's batch reaches it (embeddings are computed off the reply path).
    embedding vector(384),
    embedding_model text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, source_kind, document_key, chunk_index),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations ON DELETE CASCADE,
    CHECK ((embedding IS NULL) = (embedding_model IS NULL))
);
-- Queries filter by tenant before ranking; with pgvector 0.8+ set hnsw.iterative_scan so a
-- selective tenant filter still returns enough rows.
CREATE INDEX memory_chunks_embedding_idx
    ON memory_chunks USING hnsw (embedding vector_cosine_ops);
CREATE INDEX memory_chunks_tenant_idx ON memory_chunks (tenant_id, source_kind);
CREATE INDEX memory_chunks_pending_idx
    ON memory_chunks (tenant_id, chunk_id) WHERE embedding IS NULL;
CREATE INDEX memory_chunks_tags_idx ON memory_chunks USING gin (tags);

CREATE TABLE tool_calls (
    tool_call_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    conversation_id text,
    turn_id text,
    fencing_token bigint CHECK (fencing_token >= 1),
    agent_profile text NOT NULL CHECK (char_length(agent_profile) BETWEEN 1 AND 64),
    tool text NOT NULL CHECK (char_length(tool) BETWEEN 1 AND 128),
    -- Arguments with secrets and personal data redacted: this is an audit trail.
    arguments jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- What a repeat of the same idempotency key gets back.
    result jsonb,
    outcome text NOT NULL DEFAULT 'pending'
        CHECK (outcome IN ('pending', 'succeeded', 'failed', 'denied', 'rate_limited',
                           'timed_out', 'stale')),
    error_code text,
    latency_ms integer CHECK (latency_ms >= 0),
    -- Turn id + the LLM's tool call id.
    idempotency_key text NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 256),
    dry_run boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    UNIQUE (tenant_id, idempotency_key),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, turn_id) REFERENCES turns ON DELETE CASCADE,
    CHECK ((outcome = 'pending') = (completed_at IS NULL))
);
CREATE INDEX tool_calls_conversation_idx
    ON tool_calls (tenant_id, conversation_id, created_at);
CREATE INDEX tool_calls_tool_idx ON tool_calls (tenant_id, tool, created_at);

-- Every event, kept beyond stream retention for replays. No foreign keys on purpose: the
-- archive is a log and keeps what happened even after a tenant or conversation is removed.
CREATE TABLE event_archive (
    event_id uuid PRIMARY KEY,
    stream text NOT NULL,
    type text NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    tenant_id text NOT NULL,
    conversation_id text NOT NULL,
    occurred_at timestamptz NOT NULL,
    envelope jsonb NOT NULL CHECK (jsonb_typeof(envelope) = 'object'),
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_archive_conversation_idx
    ON event_archive (tenant_id, conversation_id, occurred_at);
CREATE INDEX event_archive_occurred_idx ON event_archive (occurred_at);
CREATE INDEX event_archive_stream_idx ON event_archive (stream, occurred_at);
