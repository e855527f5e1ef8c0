"""The fine-tune throughput meter: the steady training loop only (no first batch, no
validation inside the loop, nothing after it)."""

from __future__ import annotations

from api.jobs.throughput import ThroughputMeter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def test_the_steady_loop_is_measured_without_warm_up_or_validation() -> None:
    clock = Clock()
    meter = ThroughputMeter(clock)
    meter.pause()  # the sanity check before training counts for nothing
    meter.resume()
    meter.start()
    clock.tick(5.0)  # first batch: loader start-up and warm-up
    meter.batch_end(8)
    for i in range(4):
        clock.tick(0.5)
        if i == 2:  # validation in the loop takes 3 s
            meter.pause()
            clock.tick(3.0)
            meter.resume()
        meter.batch_end(8)
    meter.stop()
    clock.tick(60.0)  # final validation and testing
    meter.pause()
    clock.tick(10.0)
    meter.resume()
    meter.batch_end(8)  # ignored after the loop
    got = meter.result(encoder="preset:nano", batch_size=8)
    assert got == {
        "samples_per_s": 16.0,
        "samples": 32,
        "seconds": 2.0,
        "batches": 5,
        "encoder": "preset:nano",
        "batch_size": 8,
    }


def test_one_batch_is_measured_over_itself_and_none_is_no_rate() -> None:
    clock = Clock()
    meter = ThroughputMeter(clock)
    assert meter.result()["samples_per_s"] is None  # a resumed run that had finished
    meter.start()
    clock.tick(2.0)
    meter.batch_end(4)
    assert meter.result()["samples_per_s"] == 2.0
