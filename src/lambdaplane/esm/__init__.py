"""Event source mappings: Lambda polling queues and streams and invoking functions.

``manager`` runs one poller per enabled mapping (``POLLERS`` by source kind) and settles
the states the API writes; ``poller`` is the contract a source implements (``Poller``,
``PollerContext``); ``model`` the mapping as pollers see it (``MappingConfig``);
``batching`` and ``filtering`` the pure rules every source shares; ``sqs`` and the
stream and broker modules the sources. See ``docs/esm.md``.
"""
