"""The Lambda event source mapping, played locally: ingest queue → starter, batch by batch."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Invoke = Callable[[str, Any], tuple[Any, str | None]]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class QueuePump:
    """Reads the queue, invokes the starter, deletes what succeeded.

    Messages the starter lists in `batchItemFailures`, or a whole batch whose invoke failed,
    stay on the queue: they come back after the visibility timeout, and the queue's redrive
    policy moves them to the DLQ after maxReceiveCount receives, as on AWS.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        function: str,
        invoke: Invoke,
        region: str,
        batch_size: int = 10,
        idle_wait: float = 0.05,
        max_idle_wait: float = 0.5,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function = function
        self.invoke = invoke
        self.region = region
        self.batch_size = batch_size
        # An empty queue is asked again after idle_wait, then less and less often up to
        # max_idle_wait: each receive costs the cloud's CPU, which the functions need.
        self.idle_wait = idle_wait
        self.max_idle_wait = max_idle_wait
        self.batches = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> int:
        """One receive → invoke → delete cycle; the number of messages received."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        self.batches += 1
        result, error = self.invoke(self.function, sqs_event(messages, self.queue_arn, self.region))
        if error:
            self.errors.append(str(result.get("errorMessage", result)))
            return len(messages)
        failed = {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)

    def _run(self) -> None:
        idle = self.idle_wait
        while not self._stop.is_set():
            try:
                received = self.poll_once()
            except Exception as exc:  # the pump must outlive one bad poll, as the ESM does
                self.errors.append(f"{type(exc).__name__}: {exc}")
                received = 0
            if received:
                idle = self.idle_wait
                continue
            woken = self._wake.wait(idle)
            self._wake.clear()
            idle = self.idle_wait if woken else min(idle * 2, self.max_idle_wait)

    def nudge(self) -> None:
        """Something was just sent to the queue: receive now."""
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sluice-pump", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
