"""``mbolake bus|feed|stream``: argument parsers and handlers (mbolake.cli delegates here)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .bus import BusError

COMMANDS = ("bus", "feed", "stream")


def add_commands(sub) -> None:
    bus = sub.add_parser("bus", help="the local Kafka broker (KRaft, 127.0.0.1): start, stop, status")
    bus.add_argument("action", choices=["start", "stop", "status"])
    bus.add_argument("--port", type=int, default=None, help="broker port (default: bus.port of the profile, 9092)")
    bus.add_argument("--profile", default=None)

    feed = sub.add_parser("feed", help="publish MBO events onto mbo_raw: replay DBN files or Databento Live")
    feed_sub = feed.add_subparsers(dest="feed_command", required=True)
    replay = feed_sub.add_parser("replay", help="replay DBN file(s) in file order, paced by ts_recv")
    replay.add_argument("target", help="a .dbn/.dbn.zst file or a folder of them")
    replay.add_argument("--speed", default="max", help="1 (real time), 10 (ten times) or max (default)")
    replay.add_argument("--from", dest="start", default=None, metavar="HH:MM", help="first minute (product time zone)")
    replay.add_argument("--to", dest="end", default=None, metavar="HH:MM", help="end minute, exclusive")
    replay.add_argument("--progress-file", default=None, help="resume file (default: runs/feeds/replay-<topic>.json)")
    replay.add_argument("--chunk-records", type=int, default=50_000,
                        help="records acknowledged (and recorded in the progress file) at a time")
    live = feed_sub.add_parser("live", help="Databento Live MBO (needs DATABENTO_API_KEY)")
    live.add_argument("--symbols", default=None, help="comma separated (default: ES.FUT for ES, TSLA for TSLA)")
    live.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (default: run until killed)")
    for parser in (replay, live):
        parser.add_argument("--underlier", default="ES", help="product of the records (ES, TSLA)")
        parser.add_argument("--topic", default="mbo_raw")
        parser.add_argument("--bootstrap", default=None, help="host:port of the broker (default: the profile's bus)")
        parser.add_argument("--profile", default=None)

    stream = sub.add_parser("stream", help="streaming jobs in the background (logs under runs/streams/)")
    stream.add_argument("action", choices=["start", "stop", "status"])
    stream.add_argument("name", nargs="?", default=None,
                        help="job name: rt_bronze, rt_silver, rt_inference (start/stop: default rt_bronze; status: all)")
    stream.add_argument("--bootstrap", default=None)
    stream.add_argument("--topic", default=None)
    stream.add_argument("--max-offsets", type=int, default=None, help="Kafka offsets per micro-batch")
    stream.add_argument("--profile", default=None)


def run(args) -> int:
    try:
        return {"bus": _bus, "feed": _feed, "stream": _stream}[args.command](args)
    except (BusError, ValueError, FileNotFoundError, PermissionError, RuntimeError) as exc:
        print(f"mbolake {args.command}: {exc}", file=sys.stderr)
        return 2


def _profile(args):
    from ..runtime.config import load_profile

    return load_profile(args.profile)


def _bus(args) -> int:
    from . import bus

    profile = _profile(args)
    conf = profile.settings.get("bus", {})
    if conf.get("kind", "kafka") != "kafka":
        raise BusError(f"profile {profile.name!r} uses bus.kind {conf.get('kind')!r}: there is no local broker to {args.action}")
    state = Path(str(conf.get("state", "./lake/bus"))).expanduser()
    state = state if state.is_absolute() else (profile.root / state).resolve()
    if args.action == "start":
        info = bus.start(state, port=args.port or int(conf.get("port", 9092)))
        print(f"Kafka {bus.KAFKA_VERSION} broker on {info['bootstrap']} (pid {info['pid']}, state {state}); "
              f"topics: {', '.join(bus.TOPICS)}")
    elif args.action == "stop":
        print("broker stopped" if bus.stop(state) else f"no broker running from {state}")
    else:
        info = bus.status(state)
        print(json.dumps(info, indent=1))
        return 0 if info["running"] else 1
    return 0


def _feed(args) -> int:
    from . import feed
    from .bus import settings_from

    profile = _profile(args)
    if args.feed_command == "live":
        from .live import live

        key = live_key()
        settings = settings_from(profile.settings.get("bus", {}), args.bootstrap)
        result = live(settings, key, underlier=args.underlier, symbols=args.symbols, topic=args.topic, seconds=args.seconds)
        print(f"live: {result.sent:,} events in {result.seconds:.1f} s")
        return 0
    feed.parse_speed(args.speed)  # bad parameters fail before the broker is contacted
    feed.parse_clock(args.start, "--from")
    feed.parse_clock(args.end, "--to")
    settings = settings_from(profile.settings.get("bus", {}), args.bootstrap)
    progress = args.progress_file or Path(profile.runs_root) / "feeds" / f"replay-{args.topic}.json"
    result = feed.replay(args.target, settings, underlier=args.underlier, speed=args.speed, start=args.start,
                         end=args.end, progress_file=progress, project_root=profile.root, topic=args.topic,
                         chunk_records=args.chunk_records)
    resumed = f" (resumed: {', '.join(f'{Path(p).name} after {n:,}' for p, n in result.resumed_from.items())})" if result.resumed_from else ""
    print(f"replay: {result.files} file(s), {result.sent:,} events in {result.seconds:.1f} s ({result.rate:,.0f} ev/s){resumed}")
    return 0


def live_key() -> str:
    import os

    key = os.environ.get("DATABENTO_API_KEY", "").strip()
    if not key:
        raise ValueError("feed live needs a Databento API key: set DATABENTO_API_KEY (or load it from Key Vault into it)")
    return key


def _stream(args) -> int:
    from . import jobs

    profile = _profile(args)
    if args.action != "status" and args.name is None:
        args.name = "rt_bronze"
    if args.action == "start":
        info = jobs.start(profile, args.name, bootstrap=args.bootstrap, topic=args.topic, max_offsets=args.max_offsets)
        print(f"{args.name} started (pid {info['pid']}); log: {info['log']}")
    elif args.action == "stop":
        print(f"{args.name} stopped" if jobs.stop(profile, args.name) else f"{args.name} was not running")
    else:
        rows = jobs.status(profile, args.name)
        print(json.dumps(rows, indent=1))
        return 0 if any(r["running"] for r in rows) else 1
    return 0
