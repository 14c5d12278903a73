"""The bridge's HTTP routes, one module per resource of Strimzi's OpenAPI spec."""
