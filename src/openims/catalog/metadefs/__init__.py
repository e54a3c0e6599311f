"""Glance's metadata definitions catalogue (metadefs): namespaces of property, object and tag
definitions, and the resource types they apply to.

- ``definitions``: what a document may hold (pure checks → frozen specs);
- ``access``: who sees and who changes a namespace (tenancy in the query), shared errors;
- ``namespaces``, ``contents``, ``resource_types``: the rules and state;
- ``seed`` and ``shipped/``: the namespaces shipped with the service, loaded at the first start.

The wire shapes live in ``api.metadef_wire``; the routes in ``api.metadef_routes``.
"""
