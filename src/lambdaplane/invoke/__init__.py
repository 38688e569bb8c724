"""Synchronous invocation: pools of execution environments per function version.

``scheduler`` decides (pure functions over snapshots), ``environment`` runs one
sandboxed environment and speaks the agent's wire protocol, ``pools`` owns the live
environments and applies the decisions, ``service`` is what the Invoke API calls.
"""
