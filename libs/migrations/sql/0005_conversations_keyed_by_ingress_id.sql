-- A conversation is what the ingress names it: `<channel id>:<conversation key>`, the key being
-- the provider's conversation within the channel (WhatsApp wa_id, Telegram chat id, Chatwoot
-- conversation id, Twilio sender, the generic app's conversation id). Every event, partition
-- and Redis key of a conversation is keyed by (tenant_id, conversation_id), so the primary key
-- (tenant_id, conversation_id) is the natural key: a row is created once per ingress id, by
-- INSERT ... ON CONFLICT (tenant_id, conversation_id), and a closed one is reopened rather than
-- replaced. The id begins with the channel id, so it is unique per tenant, not only per
-- channel (provided no channel id of the tenant is another one followed by ':').
--
-- 0001 allowed one conversation not closed per contact and channel, which cannot hold what
-- providers have: a Telegram user in several groups of one bot, a Chatwoot contact with
-- several open conversations in one inbox, an app with several threads per user. The random
-- default id named a conversation no event could ever carry; an insert now has to give the id.

DROP INDEX conversations_active_uq;
ALTER TABLE conversations ALTER COLUMN conversation_id DROP DEFAULT;
