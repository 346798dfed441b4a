#!/usr/bin/env python3
"""Time from process start to the first generated token, and peak RSS, of slm-chat builds.

  benchmarks/first_token.py [-r RUNS] [-c CTX] MODEL.gguf SLM_CHAT [SLM_CHAT ...]

Runs `SLM_CHAT -m MODEL -p hi -n 1 -c CTX --temp 0` RUNS times per binary, the binaries
alternating, after one untimed run of each (the page cache warm). The first token is the
first byte on stdout (slm-chat flushes each token); "exit" is when the process ended; "cpu" is
its user + system time to the exit (on a busy machine the least disturbed figure); peak RSS is
the kernel's ru_maxrss. Prints min and median of each, per binary, in one table.
"""
import argparse
import os
import statistics
import subprocess
import time


def run_once(binary, model, ctx):
    command = [binary, "-m", model, "-p", "hi", "-n", "1", "-c", str(ctx), "--temp", "0"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first_byte = process.stdout.read(1)
    first_token = time.perf_counter() - start
    process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    exit_time = time.perf_counter() - start
    if status != 0 or not first_byte:
        raise SystemExit(f"{binary} failed (status {status}) or printed nothing")
    return first_token, exit_time, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-r", "--runs", type=int, default=5)
    parser.add_argument("-c", "--ctx", type=int, default=512)
    parser.add_argument("model")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    samples = {binary: [] for binary in args.binaries}
    for binary in args.binaries:
        run_once(binary, args.model, args.ctx)
    for _ in range(args.runs):
        for binary in args.binaries:
            samples[binary].append(run_once(binary, args.model, args.ctx))
    size_mib = os.path.getsize(args.model) / 2**20
    print(f"{os.path.basename(args.model)} ({size_mib:.1f} MiB), -c {args.ctx}, {args.runs} runs each, alternating")
    print("| binary | first token s (min / median) | exit s (min / median) | cpu s (min / median) | peak RSS MiB (max) "
          "| first token s, each run |")
    print("|---|---|---|---|---|---|")
    for binary, runs in samples.items():
        first, done, cpu, rss = zip(*runs)
        print(f"| {binary} | {min(first):.3f} / {statistics.median(first):.3f} | "
              f"{min(done):.3f} / {statistics.median(done):.3f} | {min(cpu):.3f} / {statistics.median(cpu):.3f} | "
              f"{max(rss):.1f} | {' '.join(f'{t:.2f}' for t in first)} |")


if __name__ == "__main__":
    main()
