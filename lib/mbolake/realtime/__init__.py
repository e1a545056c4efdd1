"""Real time: the event bus (a local Kafka broker, Event Hubs' Kafka endpoint in production),
the DBN replay and Databento Live feeds, and the streaming jobs that read the bus."""
