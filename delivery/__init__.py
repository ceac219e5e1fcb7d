"""Sending replies: what turns an ``agent.ai.response.generated`` event into messages sent.

It will hold the whole path of a reply: the fencing check (``dispatcher.turns.TurnGuard``: a
superseded turn never speaks), the idempotent send through the channel's outbound sender
(``channels``; a redelivered reply never sends twice), splitting and pacing the parts,
WhatsApp's 24-hour window, typing indicators, closing the turn, and the hand-off to a human.
Modules: ``replies`` (fence, claim, send, close), ``outbox`` (claims and every provider id
of a sent part), ``statuses`` (provider statuses per chunk and message), ``senders`` (the
paced senders built from the config file) and ``window`` (WhatsApp's 24-hour window).
"""
