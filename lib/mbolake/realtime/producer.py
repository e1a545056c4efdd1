"""One Kafka producer for every feed (replay and live): idempotent, ordered per partition,
delivery confirmed before a feed records its progress."""
from __future__ import annotations

from .bus import BusError, BusSettings, check_bus


class BusProducer:
    def __init__(self, settings: BusSettings, topic: str = "mbo_raw", check: bool = True):
        from confluent_kafka import Producer

        if check:
            check_bus(settings, (topic,))
        self.topic = topic
        self.settings = settings
        self.failed: list[str] = []
        self.delivered = 0
        conf = settings.producer_config() | {
            # retries never duplicate or reorder a contract's events within the topic
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
            "log_level": 3,
        }
        self._producer = Producer(conf)

    def _delivered(self, err, _msg) -> None:
        if err is not None:
            self.failed.append(str(err))
        else:
            self.delivered += 1

    def send(self, pairs: list[tuple[bytes, bytes]]) -> None:
        """Queue ``(key, value)`` messages; blocks while the local queue is full."""
        produce, poll = self._producer.produce, self._producer.poll
        topic, callback = self.topic, self._delivered
        for key, value in pairs:
            while True:
                try:
                    produce(topic, value, key, on_delivery=callback)
                    break
                except BufferError:
                    poll(0.05)
        poll(0)

    def flush(self, timeout: float = 120.0) -> None:
        """Wait until every queued message is acknowledged; raise naming the broker otherwise."""
        left = self._producer.flush(timeout)
        if self.failed:
            raise BusError(f"{len(self.failed)} message(s) to {self.topic} on {self.settings.bootstrap} failed: {self.failed[0]}")
        if left:
            raise BusError(f"{left} message(s) to {self.topic} on {self.settings.bootstrap} not acknowledged within {timeout:.0f} s")
