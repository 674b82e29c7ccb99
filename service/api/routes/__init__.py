"""Thin HTTP routes: parse, authorise by role, call a flow, shape the answer."""
