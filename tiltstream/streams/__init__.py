"""The event backbone: topics, Avro serde, Kafka clients, the local broker."""
