-- The current fencing token of a conversation, in one place: the greatest of
-- conversations.last_fencing_token and the newest turn's token, whichever the turn opener
-- wrote first. Null when the tenant has no such conversation, so a comparison with it is
-- never true and the write it guards is refused.
CREATE FUNCTION conversation_fencing_token(p_tenant_id text, p_conversation_id text)
RETURNS bigint
LANGUAGE sql STABLE
AS $$
    SELECT GREATEST(c.last_fencing_token,
                    COALESCE((SELECT max(t.fencing_token) FROM turns t
                              WHERE t.tenant_id = p_tenant_id
                                AND t.conversation_id = p_conversation_id), 0))
    FROM conversations c
    WHERE c.tenant_id = p_tenant_id AND c.conversation_id = p_conversation_id
$$;
