"""The Avro schemas of the event catalogue (``*.avsc``) and the generator of their typed records.

``python -m tiltstream.schemas.codegen`` (or ``tiltstream schemas generate``) writes
:mod:`tiltstream.streams.events` from the schemas in this folder.
"""
