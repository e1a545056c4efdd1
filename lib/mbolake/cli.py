"""``mbolake`` command line: run notebooks, run the demo, warm the Spark set-up."""
from __future__ import annotations

import argparse
import sys


def parse_value(text: str):
    """``-p name=value`` values: int, float, true/false, none, else the string itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_parameters(items: list[str]) -> dict:
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"mbolake: bad parameter {item!r}; use -p name=value")
        params[name.strip()] = parse_value(value)
    return params


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mbolake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute notebooks in order with papermill into runs/<run_id>/")
    run.add_argument("notebooks", nargs="+", help="notebook paths under notebooks/ or stage folders (e.g. 10_bronze)")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="parameter for every notebook")
    run.add_argument("--run-id", default=None,
                     help="output folder name under runs/ (default: UTC time and a random suffix); an id in use is refused")
    run.add_argument("--profile", default=None, help="conf/<profile>.yaml (default: MBOLAKE_PROFILE or local)")
    run.add_argument("--no-reports", action="store_true", help="skip the run reports (reports/*.ipynb) at the end")

    demo = sub.add_parser("demo", help="generate the sample if missing, then run every stage that exists")
    demo.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    demo.add_argument("--run-id", default=None)
    demo.add_argument("--profile", default=None)
    demo.add_argument("--no-reports", action="store_true")

    report = sub.add_parser("report", help="render run reports into runs/<run_id>/reports/*.html and runs/index.html")
    report.add_argument("name", help="validation, features, sweep or all")
    report.add_argument("--run-id", required=True, help="the run under runs/ to report on")
    report.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="report parameter (model_id, sessions, ...)")
    report.add_argument("--profile", default=None)

    sub.add_parser("warm", help="resolve the Delta Lake, Spark Kafka and Kafka broker jars once and check Spark starts")

    from .realtime.commands import add_commands

    add_commands(sub)  # bus, feed, stream

    book = sub.add_parser("book", help="order-book tools")
    book_sub = book.add_subparsers(dest="book_command", required=True)
    replay = book_sub.add_parser("replay", help="rebuild books from an MBO file; write MBP-10 rows to Parquet")
    replay.add_argument("file", help="Databento MBO file (.dbn or .dbn.zst, DBN v1-v3)")
    replay.add_argument("--out", default=None, help="Parquet file for the MBP-10 rows (omit: counters only)")
    replay.add_argument("--every-record", action="store_true", help="one row after every record, not per event")
    replay.add_argument("--instrument", type=int, default=None, help="only this instrument_id")
    return parser


def book_replay(args) -> int:
    from .io.book_replay import replay
    from .io.dbn import DbnFormatError

    try:
        result = replay(args.file, args.out, every_record=args.every_record, instrument_id=args.instrument)
    except (DbnFormatError, FileNotFoundError) as exc:
        print(f"mbolake book replay: {exc}", file=sys.stderr)
        return 2
    rate = result.records / result.seconds if result.seconds else 0.0
    print(f"{result.records:,} records -> {result.rows:,} MBP-10 rows in {result.seconds:.2f} s ({rate:,.0f} records/s)")
    if args.out:
        print(f"written: {args.out}")
    import pandas as pd

    with pd.option_context("display.max_columns", None, "display.width", 200):
        print(result.quality.T.to_string(header=False) if len(result.quality) == 1 else result.quality.to_string(index=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "book":
        return book_replay(args)
    if args.command in ("bus", "feed", "stream"):
        from .realtime.commands import run as run_realtime

        return run_realtime(args)
    if args.command == "warm":
        from .realtime.bus import resolve_jars

        print(f"Kafka broker jars: {resolve_jars()}")
        from .runtime.spark import get_spark

        spark = get_spark()
        print(f"Spark {spark.version} with Delta Lake and the Kafka source is ready")
        return 0
    if args.command == "report":
        from .reports.render import main_report

        return main_report(args.name, args.run_id, parse_parameters(args.param), args.profile)
    from .runtime.orchestrator import DEMO_PIPELINE, main_run

    params = parse_parameters(args.param)
    names = DEMO_PIPELINE if args.command == "demo" else args.notebooks
    if args.no_reports:
        return main_run(names, params, args.run_id, args.profile)
    from .reports.render import reports_after_run

    return main_run(names, params, args.run_id, args.profile, reports_after_run(params))


if __name__ == "__main__":
    sys.exit(main())
