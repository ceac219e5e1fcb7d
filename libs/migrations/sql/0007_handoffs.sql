-- Human stretches of a conversation: when a human took it over and when it went back to the AI.
--
-- A row opens in the same transaction that assigns the conversation to a human (at most one
-- open row per conversation), and closes in the same transaction that releases it, so the
-- history always says where each human stretch began and ended. The handoff worker fills in
-- why (the `conversation.handoff.human` event that asked, its reason and who asked) and notes
-- when the people taking over were told (a Chatwoot private note, or a notice to the contact):
-- a redelivered event finds `agents_notified_at` set and tells nobody twice.

CREATE TABLE handoffs (
    tenant_id text NOT NULL,
    handoff_id bigint GENERATED ALWAYS AS IDENTITY,
    conversation_id text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    -- Who handed it back: `operator` (the command line) or the channel (e.g. `chatwoot`).
    released_by text CHECK (char_length(released_by) BETWEEN 1 AND 64),
    event_id text CHECK (char_length(event_id) BETWEEN 1 AND 128),
    reason text CHECK (char_length(reason) <= 64),
    requested_by text CHECK (char_length(requested_by) <= 32),
    agents_notified_at timestamptz,
    PRIMARY KEY (tenant_id, handoff_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations ON DELETE CASCADE,
    CHECK (ended_at IS NULL OR ended_at >= started_at),
    CHECK ((ended_at IS NULL) = (released_by IS NULL))
);
CREATE UNIQUE INDEX handoffs_one_open_uq
    ON handoffs (tenant_id, conversation_id) WHERE ended_at IS NULL;
CREATE UNIQUE INDEX handoffs_event_uq ON handoffs (tenant_id, event_id);
CREATE INDEX handoffs_conversation_idx ON handoffs (tenant_id, conversation_id, started_at);
