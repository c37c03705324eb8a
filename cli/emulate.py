"""``gemini-slo emulate``: serve the Gemini API emulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal

import structlog
from gemini_slo.emulator.batches import BatchTiming
from gemini_slo.emulator.capacity import Pool
from gemini_slo.emulator.profile import Profile, ProfileError, load_profile, with_pools
from gemini_slo.emulator.server import (
    DEFAULT_MAX_BODY_BYTES,
    Emulator,
    EmulatorConfig,
    start_server,
)

log = structlog.get_logger("gemini_slo.emulator")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``gemini-slo emulate``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8089, help="port (default 8089; 0 = free)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same responses")
    parser.add_argument("--profile", default=None, help="profile YAML (default: shipped one)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply the profile's latencies (0 = no model latency)",
    )
    parser.add_argument("--no-quotas", action="store_true", help="disable RPM/TPM quotas")
    parser.add_argument(
        "--pool",
        action="append",
        default=[],
        metavar="NAME=CAPACITY:MODEL,MODEL",
        help="put models in a capacity pool whose latency grows with its requests in flight "
        "(repeatable; e.g. shared=16:gemini-2.5-flash,gemini-2.5-flash-lite)",
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="request size limit"
    )
    defaults = BatchTiming()
    parser.add_argument(
        "--batch-queue-s",
        type=float,
        default=defaults.queue_s,
        help=f"batch jobs: seconds in the queue (default {defaults.queue_s:g}, x time scale)",
    )
    parser.add_argument(
        "--batch-rate",
        type=float,
        default=defaults.requests_per_s,
        help=f"batch jobs: requests processed per second (default {defaults.requests_per_s:g})",
    )


async def _serve(emulator: Emulator, host: str, port: int) -> None:
    runner, bound = await start_server(emulator, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "emulator_started",
        url=f"http://{host}:{bound}",
        seed=emulator.config.seed,
        profile=emulator.profile.source,
        models=[m.name for m in emulator.profile.unique_models()],
        time_scale=emulator.config.time_scale,
        quotas=emulator.config.quotas,
        pools={name: pool.capacity for name, pool in emulator.profile.pools.items()},
    )
    try:
        await stop.wait()
    finally:
        log.info("emulator_stopping")
        await runner.cleanup()
        log.info("emulator_stopped", **emulator.stats.snapshot())


def _with_pool_options(profile: Profile, options: list[str]) -> Profile:
    pools: dict[str, Pool] = {}
    members: dict[str, str] = {}
    for option in options:
        name, _, rest = option.partition("=")
        capacity, _, models = rest.partition(":")
        try:
            pool = Pool(name, float(capacity))
        except ValueError:
            pool = None
        if not name or pool is None or pool.capacity <= 0 or not models:
            raise ProfileError(f"--pool {option!r}: expected NAME=CAPACITY:MODEL,MODEL")
        pools[name] = pool
        members.update(dict.fromkeys(models.split(","), name))
    return with_pools(profile, pools, members)


def run(args: argparse.Namespace) -> int:
    """Run the emulator in the foreground; exit status 0 on a clean stop, 2 on bad options."""
    try:
        profile = load_profile(args.profile)
        if args.pool:
            profile = _with_pool_options(profile, args.pool)
    except (ProfileError, OSError) as exc:
        log.error("bad_profile", error=str(exc))
        return 2
    try:
        batch = BatchTiming(queue_s=args.batch_queue_s, requests_per_s=args.batch_rate)
    except ValueError as exc:
        log.error("bad_batch_timing", error=str(exc))
        return 2
    config = EmulatorConfig(
        seed=args.seed,
        profile=profile,
        time_scale=args.time_scale,
        quotas=not args.no_quotas,
        max_body_bytes=args.max_body_bytes,
        batch=batch,
    )
    try:
        asyncio.run(_serve(Emulator(config), args.host, args.port))
    except OSError as exc:  # e.g. the port is taken
        log.error("emulator_failed", error=str(exc))
        return 1
    return 0
