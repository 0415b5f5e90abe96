"""Scaling simulation: KEDA's lag rule on the k8s/ manifests against fixed replicas, over a PACE day.

A discrete-event simulation of one day of PACE-tomo acquisition on 4 and on 20 microscopes, fed through
the four processing stages as the Kubernetes deployment runs them:

* Load (seeded): each microscope collects batches of beam-shift targets (4-12, mean 8) of 41 tilts
  each, one movie every ~7.2 s (500 movies an hour per microscope, ~2,000 an hour for four, as
  FACTS.md says), tilts interleaved over the targets, so all series of a batch end together; 5
  minutes between batches and an hour's grid exchange about every 8 hours.
* Kafka: every series is keyed to one partition (seeded, uniform); per-partition order holds (a
  partition's next event waits for the one in hand); each replica works one job at a time on the
  partitions assigned to it (spread evenly at every membership change); CTF follows motion correction
  on the same partition; the aggregator requests a reconstruction when every tilt of a series is
  CTF-estimated and the series ended; denoising follows reconstruction.
* Scaling read from the rendered manifests (``tiltstream.k8s.render_kustomization``): each stage's
  ScaledObject (lagThreshold, activation, min/max replicas, polling, cooldown, HPA behaviour) and the
  topics' partition count. KEDA: desired = ceil(lag / lagThreshold), lag counting the events in hand
  (not yet committed), capped at min(max, partitions); 0 -> 1 on lag > activation; to zero after the
  cooldown without lag; scale-up at most 4 pods a step, scale-down after a 300 s stabilisation window,
  one pod a minute; a new pod is ready after 60 s (GPU) or 20 s (CPU); a removed pod finishes its job.
* Baseline: the same manifests with every stage fixed at its maxReplicaCount (eBIC's maximum
  instances, always on), in the same process.

Stage job lengths are assumptions until the processors publish measured ones (override with
``--job-seconds``): motion correction 4 s per movie (MotionCor2-class GPU code on a 4k tilt movie),
CTF 5 s per micrograph on one core (torch-ctf-estimation took 2.6 s on 2048^2 here), reconstruction
90 s per series (AreTomo-class alignment + reconstruction at bin 4), denoising 60 s per tomogram
(Topaz 3D on a GPU); each job varies log-normally (sigma 0.25).

Printed per scenario: time from a series' last tilt to its denoised tomogram (p50/p95/max), each
stage's queueing delay (p95), replica counts (peak and mean) and GPU-hours, and the ratios KEDA /
fixed. Usage::

    python benchmarks/scaling_simulation.py [--hours 24] [--seed 1] [--microscopes 4|20]
        [--job-seconds motioncorr=4,ctf=5,...] [--lag-threshold motioncorr=2,...]
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import math
import random
import statistics
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tiltstream.k8s.render import render_kustomization

K8S = Path(__file__).resolve().parent.parent / "k8s"
STAGES = ("motioncorr", "ctf", "reconstruct", "denoise")
DEFAULT_JOB_SECONDS = {"motioncorr": 4.0, "ctf": 5.0, "reconstruct": 90.0, "denoise": 60.0}


@dataclass(frozen=True)
class Scaling:
    """One stage's ScaledObject as rendered, plus whether its pods hold a GPU."""

    stage: str
    min_replicas: int
    max_replicas: int
    lag_threshold: int
    activation: int
    polling_seconds: int
    cooldown_seconds: int
    gpu: bool


def read_scaling(overlay: Path) -> tuple[dict[str, Scaling], int]:
    """Each processor's scaling and the co-partitioned topics' partition count, from the manifests."""
    manifests = render_kustomization(overlay)
    objects = {(m["kind"], m["metadata"]["name"]): m for m in manifests}
    partitions = {
        m["spec"]["partitions"]
        for m in manifests
        if m["kind"] == "KafkaTopic" and m["metadata"]["labels"]["tiltstream.io/co-partitioned"] == "true"
    }
    assert len(partitions) == 1, partitions
    scaling = {}
    for stage in STAGES:
        spec = objects[("ScaledObject", f"tiltstream-{stage}")]["spec"]
        trigger = spec["triggers"][0]["metadata"]
        container = objects[("Deployment", f"tiltstream-{stage}")]["spec"]["template"]["spec"]["containers"][
            0
        ]
        scaling[stage] = Scaling(
            stage=stage,
            min_replicas=spec["minReplicaCount"],
            max_replicas=spec["maxReplicaCount"],
            lag_threshold=int(trigger["lagThreshold"]),
            activation=int(trigger.get("activationLagThreshold", "0")),
            polling_seconds=spec.get("pollingInterval", 30),
            cooldown_seconds=spec.get("cooldownPeriod", 300),
            gpu="nvidia.com/gpu" in container["resources"]["limits"],
        )
    return scaling, partitions.pop()


@dataclass
class Series:
    """One tilt series: its partition, tilts still to pass CTF, and its timeline."""

    partition: int
    tilts_left: int
    ended_at: float = math.inf
    done: dict[str, float] = field(default_factory=dict)


def pace_day(
    microscopes: int, hours: float, partitions: int, rng: random.Random
) -> tuple[list[Series], list[tuple[float, int]]]:
    """The series and the (time, series index) of every movie acquired."""
    series: list[Series] = []
    movies: list[tuple[float, int]] = []
    end = hours * 3600
    for _ in range(microscopes):
        t = rng.uniform(0, 1800)
        next_exchange = t + rng.uniform(6, 10) * 3600
        while t < end:
            targets = rng.randint(4, 12)
            batch = [len(series) + i for i in range(targets)]
            series += [Series(partition=rng.randrange(partitions), tilts_left=41) for _ in batch]
            for _tilt in range(41):
                for index in batch:
                    t += rng.uniform(6.2, 8.2)
                    movies.append((t, index))
            for index in batch:
                series[index].ended_at = t
            t += 300
            if t > next_exchange:
                t += 3600
                next_exchange = t + rng.uniform(6, 10) * 3600
    return series, sorted(movies)


@dataclass
class Replica:
    """A pod of a stage: ready from ``ready_at``; ``job`` is the (partition, series) in hand."""

    ready_at: float
    partitions: list[int] = field(default_factory=list)
    job: tuple[int, int] | None = None
    leaving: bool = False


class Stage:
    """A consumer group: per-partition queues, its replicas, and KEDA/HPA's view of it."""

    def __init__(self, scaling: Scaling, partitions: int, job_seconds: float, fixed: bool) -> None:
        self.scaling, self.job_seconds, self.fixed = scaling, job_seconds, fixed
        self.queues: list[deque[tuple[float, int]]] = [deque() for _ in range(partitions)]
        self.in_hand: set[int] = set()  # partitions with a job in progress (order is per partition)
        self.replicas: list[Replica] = []
        self.lag = 0
        self.history: deque[tuple[float, int]] = deque()  # (time, desired) for scale-down stabilisation
        self.last_active = -math.inf
        self.last_scale_down = -math.inf
        self.waits: list[float] = []
        self.replica_seconds = 0.0
        self.peak = 0

    def rebalance(self, now: float) -> None:
        members = [r for r in self.replicas if r.ready_at <= now and not r.leaving]
        for replica in self.replicas:
            replica.partitions = []
        for p in range(len(self.queues)):
            if members:
                members[p % len(members)].partitions.append(p)

    def target(self, now: float) -> int:
        """The replica count KEDA and the HPA would set now."""
        s, current = self.scaling, len([r for r in self.replicas if not r.leaving])
        if self.fixed:
            return s.max_replicas
        active = self.lag > s.activation
        if active:
            self.last_active = now
        if current == 0:
            return 1 if active else 0  # KEDA activates the workload; the HPA takes it from there
        if s.min_replicas == 0 and not active and now - self.last_active >= s.cooldown_seconds:
            return 0  # KEDA's own scale to zero after the cooldown
        cap = min(s.max_replicas, len(self.queues))
        desired = min(cap, max(s.min_replicas, 1, math.ceil(self.lag / s.lag_threshold)))
        self.history.append((now, desired))
        while self.history[0][0] < now - 300:
            self.history.popleft()
        if desired > current:
            return min(desired, current + 4)
        stabilised = max(d for _, d in self.history)
        if stabilised < current and now - self.last_scale_down >= 60:
            self.last_scale_down = now
            return current - 1
        return current


@dataclass
class Result:
    """One simulated day: time from each finished series' last tilt to its denoised tomogram."""

    ttt: list[float]
    series: int
    movies: int
    stages: dict[str, Stage]
    peak_gpus: int

    @property
    def unfinished(self) -> int:
        return self.series - len(self.ttt)

    @property
    def gpu_hours(self) -> float:
        return sum(s.replica_seconds for s in self.stages.values() if s.scaling.gpu) / 3600


def simulate(
    scaling: dict[str, Scaling], partitions: int, microscopes: int, hours: float,
    job_seconds: dict[str, float], fixed: bool, seed: int,
) -> Result:  # fmt: skip
    """Run one day; returns the time-to-tomogram list and per-stage figures."""
    rng = random.Random(seed)
    series, movies = pace_day(microscopes, hours, partitions, rng)
    jitter = random.Random(seed + 1)
    stages = {name: Stage(scaling[name], partitions, job_seconds[name], fixed) for name in STAGES}
    events: list[tuple[float, int, str, str, int]] = []  # (time, tiebreak, kind, stage, payload)
    counter = 0

    def push(time: float, kind: str, stage: str, payload: int) -> None:
        nonlocal counter
        counter += 1
        heapq.heappush(events, (time, counter, kind, stage, payload))

    for t, index in movies:
        push(t, "arrive", "motioncorr", index)
    for name, stage in stages.items():
        start = stage.scaling.max_replicas if fixed else stage.scaling.min_replicas
        stage.replicas = [Replica(ready_at=0.0) for _ in range(start)]
        stage.rebalance(0.0)
        push(0.0, "poll", name, 0)
    horizon = hours * 3600 + 6 * 3600  # let the backlog drain
    last = {name: 0.0 for name in STAGES}
    peak_gpus = 0

    def dispatch(name: str, now: float) -> None:
        stage = stages[name]
        for replica in stage.replicas:
            if replica.job is not None or replica.ready_at > now or replica.leaving:
                continue
            heads = [
                (stage.queues[p][0][0], p)
                for p in replica.partitions
                if stage.queues[p] and p not in stage.in_hand
            ]
            if not heads:
                continue
            _, p = min(heads)
            arrived, index = stage.queues[p].popleft()
            stage.waits.append(now - arrived)
            stage.in_hand.add(p)
            replica.job = (p, index)
            push(now + stage.job_seconds * jitter.lognormvariate(0, 0.25), "done", name, id(replica))

    while events:
        now, _, kind, name, payload = heapq.heappop(events)
        if now > horizon:
            break
        stage = stages[name]
        live = [r for r in stage.replicas]
        stage.replica_seconds += len(live) * (now - last[name])
        last[name] = now
        if kind == "arrive":
            stage.queues[series[payload].partition].append((now, payload))
            stage.lag += 1
        elif kind == "done":
            replica = next(r for r in stage.replicas if id(r) == payload)
            assert replica.job is not None
            p, index = replica.job
            replica.job = None
            stage.in_hand.discard(p)
            stage.lag -= 1
            following = {"motioncorr": "ctf", "reconstruct": "denoise"}.get(name)
            if following:
                push(now, "arrive", following, index)
            elif name == "ctf":
                series[index].tilts_left -= 1
                if series[index].tilts_left == 0:
                    push(max(now, series[index].ended_at), "arrive", "reconstruct", index)
            else:
                series[index].done["denoise"] = now
            if replica.leaving:
                stage.replicas.remove(replica)
                stage.rebalance(now)
        elif kind == "poll":
            want = stage.target(now)
            current = [r for r in stage.replicas if not r.leaving]
            start_seconds = 60.0 if stage.scaling.gpu else 20.0
            for _ in range(want - len(current)):
                stage.replicas.append(Replica(ready_at=now + start_seconds))
                push(now + start_seconds, "ready", name, 0)
            for replica in current[want:] if want < len(current) else []:
                replica.leaving = True
                if replica.job is None:
                    stage.replicas.remove(replica)
            stage.rebalance(now)
            stage.peak = max(stage.peak, len(stage.replicas))
            gpus = sum(len(s.replicas) for s in stages.values() if s.scaling.gpu)
            peak_gpus = max(peak_gpus, gpus)
            push(now + stage.scaling.polling_seconds, "poll", name, 0)
        elif kind == "ready":
            stage.rebalance(now)
        dispatch(name, now)
    done = [s.done["denoise"] - s.ended_at for s in series if "denoise" in s.done]
    return Result(ttt=done, series=len(series), movies=len(movies), stages=stages, peak_gpus=peak_gpus)


def _pct(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else math.nan)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--job-seconds", default="", help="e.g. motioncorr=4,ctf=5,reconstruct=90,denoise=60")
    parser.add_argument(
        "--lag-threshold", default="", help="try other lagThresholds, e.g. motioncorr=2,ctf=1"
    )
    parser.add_argument("--microscopes", type=int, default=0, help="only the scenarios with this many")
    args = parser.parse_args()
    job_seconds = dict(DEFAULT_JOB_SECONDS)
    for item in filter(None, args.job_seconds.split(",")):
        key, _, value = item.partition("=")
        job_seconds[key] = float(value)
    thresholds = {
        k: int(v) for k, _, v in (i.partition("=") for i in filter(None, args.lag_threshold.split(",")))
    }
    scenarios = [(4, "base"), (20, "base"), (20, "overlays/facility-20")]
    scenarios = [s for s in scenarios if args.microscopes in (0, s[0])]
    print(f"job seconds: {job_seconds}; {args.hours:g} h of PACE acquisition, seed {args.seed}")
    for microscopes, overlay in scenarios:
        scaling, partitions = read_scaling(K8S / overlay)
        for stage, threshold in thresholds.items():
            scaling[stage] = dataclasses.replace(scaling[stage], lag_threshold=threshold)
        runs = {
            policy: simulate(
                scaling, partitions, microscopes, args.hours, job_seconds, policy == "fixed", args.seed
            )
            for policy in ("fixed", "keda")
        }
        keda, fixed = runs["keda"], runs["fixed"]
        print(f"\n== {microscopes} microscopes, k8s/{overlay} ({partitions} partitions): "
              f"{keda.movies} movies, {keda.series} series")  # fmt: skip
        for policy, run in runs.items():
            ttt = run.ttt
            print(f"  {policy:5s} time-to-tomogram p50 {_pct(ttt, 50):7.0f} s  p95 {_pct(ttt, 95):7.0f} s"
                  f"  max {max(ttt, default=math.nan):7.0f} s  unfinished {run.unfinished}"
                  f"  GPU-hours {run.gpu_hours:6.1f}  peak GPUs {run.peak_gpus}")  # fmt: skip
            for name, stage in run.stages.items():
                mean = stage.replica_seconds / (args.hours * 3600 + 6 * 3600)
                scale = stage.scaling
                wait = _pct(stage.waits, 95)
                print(f"        {name:11s} wait p95 {wait:8.1f} s  replicas peak {stage.peak:3d}"
                      f" mean {mean:5.1f}"
                      f"  (lagThreshold {scale.lag_threshold}, max {scale.max_replicas})")  # fmt: skip
        p50, p95 = (_pct(keda.ttt, q) / _pct(fixed.ttt, q) for q in (50, 95))
        print(f"  ratio keda/fixed: time-to-tomogram p50 {p50:.2f}, p95 {p95:.2f}"
              f"; GPU-hours {keda.gpu_hours / fixed.gpu_hours:.2f}"
              f"; GPUs needed: keda peak {keda.peak_gpus}, fixed {fixed.peak_gpus}")  # fmt: skip


if __name__ == "__main__":
    main()
