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


class QueryPublisher:
    """A streaming query's producer: made at its first send (about 0.3 s of a micro-batch when
    made per batch), dropped by ``close`` (``close_when_done``), so no connection outlives the query."""

    def __init__(self, settings: BusSettings, topic: str):
        self.settings, self.topic, self._producer = settings, topic, None

    def send(self, pairs: list[tuple[bytes, bytes]]) -> None:
        """Send and wait for the acknowledgements (a failure fails the micro-batch; its re-run sends again)."""
        if self._producer is None:
            self._producer = BusProducer(self.settings, self.topic, check=False)
        try:
            self._producer.send(pairs)
            self._producer.flush(60)
        except Exception:
            self._producer = None
            raise

    def close(self) -> None:
        self._producer = None  # confluent-kafka closes its connections when the producer is freed


def close_when_done(spark, writer, publisher: QueryPublisher):
    """Start ``writer``'s query with ``publisher`` closed when it terminates; returns the query.
    (The listener stays registered: a py4j call back into Spark from its own callback is not
    worth the risk.)"""
    from pyspark.sql.streaming import StreamingQueryListener

    class OnTerminated(StreamingQueryListener):
        query_id: str | None = None

        def onQueryStarted(self, event):
            pass

        def onQueryProgress(self, event):
            pass

        def onQueryIdle(self, event):
            pass

        def onQueryTerminated(self, event):
            if str(event.id) == self.query_id:
                publisher.close()

    listener = OnTerminated()
    spark.streams.addListener(listener)
    query = writer.start()
    listener.query_id = str(query.id)
    return query
