"""Time commands interleaved: round after round, every command once per round (the order
rotating), so that the load of a shared machine falls on all of them alike. Prints the median
wall time and the median CPU time (user + system of the child, which load disturbs far less)
of each, and the ratios the targets are set in. Asserts nothing.

    python bench/interleave.py SPEC.json RUNS

SPEC.json: {"commands": [[name, argv], ...], "ratios": [[name, base, target], ...]}
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import time


def run_once(argv: list[str]) -> tuple[float, float]:
    started = time.perf_counter()
    child = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{argv[0]}... exited {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    with open(sys.argv[1]) as file:
        spec = json.load(file)
    runs = int(sys.argv[2])
    commands: list[tuple[str, list[str]]] = [(name, argv) for name, argv in spec["commands"]]
    wall: dict[str, list[float]] = {name: [] for name, _ in commands}
    cpu: dict[str, list[float]] = {name: [] for name, _ in commands}
    for _ in range(2):  # warm-up: page cache, bytecode
        for _, argv in commands:
            run_once(argv)
    for round_ in range(runs):
        shift = round_ % len(commands)
        for name, argv in commands[shift:] + commands[:shift]:
            w, c = run_once(argv)
            wall[name].append(w)
            cpu[name].append(c)
    med_wall = {name: statistics.median(values) for name, values in wall.items()}
    med_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} "
        f"at the end; {runs} interleaved rounds"
    )
    print()
    print("| command | wall median (ms) | CPU median (ms) |")
    print("|---|---:|---:|")
    for name, _ in commands:
        print(f"| {name} | {med_wall[name] * 1000:.1f} | {med_cpu[name] * 1000:.1f} |")
    print()
    print("| ratio | target | wall | CPU | |")
    print("|---|---:|---:|---:|---|")
    for name, base, target in spec["ratios"]:
        if name not in med_wall:
            continue
        by_wall = med_wall[name] / med_wall[base]
        by_cpu = med_cpu[name] / med_cpu[base]
        if target is None:
            verdict, shown = "", "-"
        else:
            shown = f"<= {target}x"
            verdict = "met" if by_wall <= target else "MISSED"
        print(f"| {name} / {base} | {shown} | {by_wall:.2f} | {by_cpu:.2f} | {verdict} |")


if __name__ == "__main__":
    main()
