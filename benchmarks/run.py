"""``make bench``: every benchmark in turn; each prints its numbers and appends them to results/."""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["bench_synth.py", "bench_bronze.py", "bench_book.py", "bench_bars.py", "bench_pipeline.py", "bench_realtime.py",
              "bench_realtime_stack.py", "bench_rt_silver.py", "bench_engine_parity.py", "bench_rt_inference.py"]
# arguments under `make bench` (the scripts' own defaults are the issue's full-size runs)
ARGUMENTS = {
    # run B of RESULTS.md: the 10 M-record session cannot be streamed end to end within the bench timeout here
    "bench_realtime_stack.py": ["--records", "1000000", "--warm-until", "09:45", "--pace-from", "09:45",
                                "--pace-to", "10:05"],
}

if __name__ == "__main__":
    failed = []
    for name in BENCHMARKS:
        if not (HERE / name).exists():
            continue
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, str(HERE / name), *ARGUMENTS.get(name, [])], cwd=HERE).returncode != 0:
            failed.append(name)
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")
