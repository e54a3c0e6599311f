"""The audit trail (issue 13, items 4-5): who changed what, in Cloud Trace Service's trace fields.

- ``actions``: the table of mutating routes → (service, resource type, trace name);
- ``trail``: a trace, how it is written (its own short transaction and a JSON line; never failing the
  request it describes), queried (``GET /v3/{project_id}/traces``) and pruned (the workers' sweep).
"""
