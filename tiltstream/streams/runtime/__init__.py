"""Parts of the one consumer runtime (:class:`~tiltstream.streams.consumer.EventConsumer`).

``decoding`` (the reinjection filter, decode, validation: shared with readers outside a group),
``offsets`` (store only past finished work), ``letters`` (dead letters retried with backoff),
``metrics``.
"""

__all__: list[str] = []
