"""Request and response schemas, per resource: ``XCreate``, ``XUpdate``, ``XPublic``."""
