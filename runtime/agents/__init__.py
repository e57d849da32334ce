"""Agents: the base class and scope, and the demo agents the runtime ships with."""
