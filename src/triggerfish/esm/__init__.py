"""The event source mapping engine: Lambda's Kafka trigger — poll, batch, invoke, commit."""
