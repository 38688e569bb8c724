"""The in-sandbox agent (``agent.py``) and the frame format it shares with the host (``wire``).

This directory is bind-mounted into every sandbox at ``/var/lambdaplane`` and run as a
script there, under the function's own Python (3.9-3.13); its modules import each other
as top-level siblings. The host imports only ``lambdaplane.agent.wire``.
"""
