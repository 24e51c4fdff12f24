"""Routing configuration as code: the whole routing setup as one YAML document.

``baton routing export`` reads the database into a document; ``baton routing apply``
validates a document (:mod:`.model`, with the API's own request models; :mod:`.source`
keeps YAML line numbers for the errors), compares it with the database
(:mod:`.plan`: what to create, change, delete) and applies that plan in one
transaction (:mod:`baton_router.store.routing_document`). Account owners from a CRM
export (:mod:`.accounts_csv`) go through the same plan. :mod:`.cli` is the shell.
"""
