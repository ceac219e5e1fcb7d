"""Messaging channels: tenants and their channels, and one folder per provider.

Each provider's folder (``channels/whatsapp/``, ``channels/twilio/``, …) holds its config model
(``config.py``), its inbound adapter (verify, parse and normalize a webhook: ``inbound.py``), its
outbound sender (send a reply's parts through the provider's API: ``outbound.py``) and the
schema of its webhook (``webhook_schema.py``); its ``__init__.py`` declares the
``ChannelProvider`` (``provider.py``) that ``registry.py`` collects. ``config.py`` holds the
tenants and the channel union, built from the registry; ``base_config.py`` what every
channel's model has; ``directory.py`` records the tenants and channels in Postgres. What
several providers share has a module of its own here: ``inbound`` (what an adapter receives
and returns), ``inbound_json``, ``timestamped_hmac``, ``outbound`` (the ``ChannelSender``
port), ``sending_fields``, ``sending_errors``, ``send_retry``, ``send_breaker``, ``send_pacing``,
``provider_http``, ``http_sender``, ``text_split`` and ``payload_schema``.

Each sender is built from its config, the process's shared ``aiohttp.ClientSession``, the
channel's breaker and a retry policy. Failures are ``SendError`` subclasses that say whether
trying again can help.

Sending from the config file
----------------------------

``delivery.senders.OutboundSenders`` builds the sender of every channel in the config file and
finds it by ``(tenant_id, channel_id)``. A channel can receive webhooks with only its webhook
secret; to send it also needs these fields (``sending_problems`` lists what each channel
lacks, e.g. ``tenants[0].channels[1].secrets.bot_token: missing; ...``):

============  ==============================================================================
provider      needed to send (optional ones in brackets)
============  ==============================================================================
whatsapp      ``phone_number_id``, ``secrets.access_token``; [``api_base_url``,
              ``api_version``, ``list_button_label``, ``window_template`` (``name``,
              ``language``, ``parameters``: sent instead of a reply outside the 24-hour
              window; without it such a conversation goes to a human)]
twilio        ``account_sid``, ``sender`` (``+1555…``, ``whatsapp:+1555…`` or ``MG…``),
              ``secrets.auth_token``; [``whatsapp`` for a WhatsApp messaging service,
              ``status_callback_url`` (default: ``public_url``), ``content_sids`` per
              template, ``api_base_url``]
telegram      ``secrets.bot_token``; [``api_base_url``]
chatwoot      ``api_base_url``, ``account_id``, ``secrets.api_access_token``
generic       ``callback_url``, ``secrets.signing_secret``
============  ==============================================================================

Every channel may also set ``sending``: ``timeout_s`` (each HTTP attempt), ``max_attempts``,
``max_total_s``, ``backoff_initial_s``, ``backoff_max_s`` (retries) and ``breaker_fail_max``,
``breaker_reset_timeout_s`` (its own breaker ``channel:{id}``, shared by every replica) and
``recipient_pace`` (``interval_ms``, ``burst``, ``max_wait_s``): how fast messages may follow
one another to one recipient, kept in Redis per conversation for every replica
(``send_pacing``). Unset, each provider's documented limit applies:

============  ==============================================================================
provider      default pace per recipient
============  ==============================================================================
whatsapp      one message per 6 s after a burst of 5 (Meta's pair rate limit: one message
              every 6 s to one user, error 131056 past it; bursts borrow from what follows)
twilio        WhatsApp senders as whatsapp; SMS one per second after a burst of 3 (a long
              code sends one segment a second; Twilio queues what exceeds a number's MPS)
telegram      one per second after a burst of 3 (the Bot API FAQ: about one message per
              second to one chat)
chatwoot,     not paced (agents' inboxes and the tenant's own app have no per-recipient
generic       limit)
============  ==============================================================================

``interval_ms: 0`` turns pacing off. The slots of every message one part becomes are reserved
together, so a split text is never interleaved with another reply; a send waits for its first
slot at most ``max_wait_s`` (default 10) in the worker, and otherwise fails with
``RateLimited`` carrying the delay, which delivery turns into a redelivery of the reply then.

.. code-block:: yaml

    - id: tg-bot
      provider: telegram
      secrets:
        secret_token: {env: TG_SECRET_TOKEN}
        bot_token: {env: TG_BOT_TOKEN}
      sending: {max_attempts: 3, breaker_fail_max: 10, recipient_pace: {interval_ms: 1500}}
"""
