#!/usr/bin/env python3
"""Load test of `clipxai serve` on loopback: a bounded number of /api/explain requests, some at a
time, against a server it starts itself (the bundled model unless --model is given).

Reports requests/s, the latency percentiles of the answered (200) requests, the count of each
status, and the server's resident memory through the run. Exits 1 when an answer is neither 200
nor 503, the server dies, or its resident memory grows by more than --max-growth from the run's
second quarter to its last (a leak would; a warmed-up server stays flat).

  scripts/serve_load.py [--binary build/clipxai] [--requests 400] [--concurrency 16]
                        [--workers 1] [--queue 8] [--model PATH]

Standard library only: runs with any python3.
"""
import argparse
import http.client
import os
import random
import re
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ["girl", "boy", "desktop computer", "dog", "cat", "pizza", "car", "tree", "sun",
         "elephant", "guitar", "a photo of a dog", "a red car under a tree"]


def multipart(fields, image_name, image_bytes):
    boundary = "clipxai%016x" % random.getrandbits(64)
    parts = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     .encode() + value.encode() + b"\r\n")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                 f'filename="{image_name}"\r\nContent-Type: image/png\r\n\r\n'.encode() +
                 image_bytes + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def resident_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values, share):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "clipxai"))
    parser.add_argument("--model", help="checkpoint (default: the bundled model)")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--max-growth", type=float, default=0.10,
                        help="allowed growth of resident memory, second quarter to last")
    arguments = parser.parse_args()

    images = []
    examples = os.path.join(ROOT, "examples")
    for name in sorted(os.listdir(examples)):
        if name.endswith(".png"):
            with open(os.path.join(examples, name), "rb") as image:
                images.append((name, image.read()))

    command = [arguments.binary, "serve", "--port", "0", "--quiet",
               "--workers", str(arguments.workers), "--queue", str(arguments.queue)]
    if arguments.model:
        command += ["--model", arguments.model]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    line = server.stderr.readline()
    found = re.search(r"on http://127\.0\.0\.1:(\d+)/", line)
    if not found:
        print(f"the server did not start: {line}{server.stderr.read()}", file=sys.stderr)
        return 1
    port = int(found.group(1))

    statuses = {}
    latencies = []
    memory = []  # (requests done, MiB)
    lock = threading.Lock()
    next_request = [0]
    done = [0]
    generator = random.Random(7)
    # Each request: an example image, 1-4 prompts, some with a number so that the texts vary.
    plans = []
    for i in range(arguments.requests):
        name, data = images[i % len(images)]
        prompts = generator.sample(WORDS, generator.randint(1, 4))
        if i % 3 == 0:
            prompts[0] += f" number {i}"
        plans.append((name, data, prompts))

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                index = next_request[0]
                if index >= len(plans):
                    break
                next_request[0] += 1
            name, data, prompts = plans[index]
            body, content_type = multipart([("prompt", p) for p in prompts], name, data)
            started = time.monotonic()
            try:
                connection.request("POST", "/api/explain", body, {"Content-Type": content_type})
                response = connection.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            except (OSError, http.client.HTTPException) as error:
                status = f"error: {type(error).__name__}"
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            took = time.monotonic() - started
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(took)
                done[0] += 1
        connection.close()

    def sample_memory():
        while server.poll() is None and done[0] < len(plans):
            with lock:
                finished = done[0]
            memory.append((finished, resident_mib(server.pid)))
            time.sleep(0.25)

    started = time.monotonic()
    sampler = threading.Thread(target=sample_memory)
    sampler.start()
    clients = [threading.Thread(target=client) for _ in range(arguments.concurrency)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    elapsed = time.monotonic() - started
    sampler.join()
    alive = server.poll() is None
    final_mib = resident_mib(server.pid) if alive else float("nan")
    server.terminate()
    exit_code = server.wait(timeout=60)

    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    # The trend, not a momentary peak: the median of the last quarter's samples against the
    # median of the second quarter's (the server is warm by then).
    def median_between(low, high):
        values = sorted(mib for finished, mib in memory
                        if low * len(plans) <= finished < high * len(plans))
        return values[len(values) // 2] if values else float("nan")
    second_quarter, last_quarter = median_between(0.25, 0.5), median_between(0.75, 1.01)
    growth = (last_quarter - second_quarter) / second_quarter if memory else 0.0

    print(f"clipxai serve load: {arguments.requests} requests, {arguments.concurrency} at a time, "
          f"{arguments.workers} worker(s), queue {arguments.queue}; {os.cpu_count()} cores, {cpu}")
    print(f"  answers      {', '.join(f'{k}: {v}' for k, v in sorted(statuses.items(), key=str))}")
    print(f"  requests/s   {arguments.requests / elapsed:.1f} (all answers), "
          f"{len(latencies) / elapsed:.1f} (200s)")
    print(f"  latency (200) p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
          f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms")
    if memory:
        print(f"  resident     {memory[0][1]:.0f} MiB at the start, {max(m for _, m in memory):.0f} "
              f"MiB at most, {final_mib:.0f} MiB at the end; median {second_quarter:.0f} MiB in the "
              f"second quarter, {last_quarter:.0f} MiB in the last ({growth * 100:+.1f}%)")
    print(f"  server exit after SIGTERM: {exit_code}")

    problems = []
    unexpected = {k: v for k, v in statuses.items() if k not in (200, 503)}
    if unexpected:
        problems.append(f"answers other than 200 or 503: {unexpected}")
    if not alive:
        problems.append("the server died during the run")
    if exit_code != 0:
        problems.append(f"the server exited {exit_code} after SIGTERM")
    if growth > arguments.max_growth:
        problems.append(f"resident memory grew {growth * 100:.1f}% from the second quarter to the last")
    if statuses.get(200, 0) == 0:
        problems.append("no request was answered 200")
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
