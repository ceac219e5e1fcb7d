-- The tool gateway's audit row is also the call's idempotency claim.
--
-- Outcomes gain the two error codes 0001 had no word for: arguments the tool's schema refused,
-- and a tool (or its open circuit breaker) being unavailable.
--
-- attempts counts how often the gateway claimed the call to run it (0 for a call refused before
-- that), and claimed_at is when the current claim was taken: a claim still pending long after
-- it was taken belongs to a worker that died and may be taken over, and a completion is only
-- written by the claim it names, so a worker that was taken over cannot overwrite the result.
-- A completed row with a null result was refused before the tool ran; a later request for the
-- same call is evaluated again. A row with a result is answered from it.

ALTER TABLE tool_calls DROP CONSTRAINT tool_calls_outcome_check;
ALTER TABLE tool_calls ADD CONSTRAINT tool_calls_outcome_check
    CHECK (outcome IN ('pending', 'succeeded', 'failed', 'denied', 'rate_limited', 'timed_out',
                       'stale', 'invalid_arguments', 'unavailable'));

ALTER TABLE tool_calls ADD COLUMN attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0);
ALTER TABLE tool_calls ADD COLUMN claimed_at timestamptz;
ALTER TABLE tool_calls ADD CONSTRAINT tool_calls_pending_claimed_check
    CHECK (outcome <> 'pending' OR claimed_at IS NOT NULL);
