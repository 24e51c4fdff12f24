"""The router API's request and response bodies, one module per resource. Validation
lives here, so a bad request is a 422 whose ``loc`` names the field and whose ``msg``
says what to fix."""
