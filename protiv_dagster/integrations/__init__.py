"""A company's integration as an admin manages it: connect (verified with the vendor before it is
stored), QuickBooks Time's OAuth, status, force sync, disconnect, pull date; who may (``auth``), the
audit log (``audit``), the OAuth states (``oauth``) and the signed webhooks (``webhooks``).

No web framework here: ``protiv_dagster/service`` serves it over HTTP, and the ``protiv`` CLI calls
the same functions (``service``)."""
