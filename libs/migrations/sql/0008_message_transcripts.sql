-- The transcript of an inbound voice note or audio, stored with its message once the AI agent
-- transcribed it (profiles with transcribe_audio): the model reads it as the message's text,
-- and a redelivered turn or a later look at the conversation reuses it instead of paying for
-- the transcription again.

ALTER TABLE messages
    ADD COLUMN transcript text CHECK (char_length(transcript) <= 16384);
