#!/usr/bin/env bash
# `clipxai serve`'s JSON API over loopback with curl: a good request answers the CLI's result
# object; each bad request (not an image, truncated, 0 bytes, over the byte limit, a bomb
# header, too many or too long prompts, invalid UTF-8, missing or unknown fields, an unknown
# method...) is a 4xx JSON {"error", "category"} naming what was wrong, and /healthz still
# answers after all of them. Then: a full queue is 503 with Retry-After; a client trickling a
# byte a second is dropped; idle connections filling every thread make the next one 503 at
# once; SIGTERM answers the request in flight and exits 0.
set -eu
BIN=$1
SRC=$2
TMP=$3
source "$SRC/tests/cli/helpers.bash"
command -v curl >/dev/null || { echo "skipped: curl is not installed"; exit 0; }

IMAGE="$SRC/examples/girl_boy_desktop.png"

# start_server LOG ARGS... — starts clipxai serve on a free port and waits until it answers;
# sets SERVER_PID and URL.
start_server() {
  local log=$1
  shift
  "$BIN" serve --port 0 "$@" 2>"$log" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    URL=$(sed -n 's|.* on \(http://127\.0\.0\.1:[0-9]*\)/.*|\1|p' "$log")
    # Listening and its connection threads started: it answers.
    [ -n "$URL" ] && curl -sf "$URL/healthz" >/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited: $(cat "$log")"
    sleep 0.1
  done
  fail "the server did not start listening: $(cat "$log")"
}
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT

start_server "$TMP/server.log" --max-upload-bytes 300000 --max-prompts 4 --max-prompt-bytes 40 \
  --max-pixels 4000000

# The `clipxai` launcher became the engine (clipxai-bin beside it) in the same process, with the
# passive environment (OpenMP, OpenBLAS, glibc's allocator) unless the caller chose one.
[ "$(readlink "/proc/$SERVER_PID/exe")" = "$(dirname "$(readlink -f "$BIN")")/clipxai-bin" ] ||
  fail "the server runs $(readlink "/proc/$SERVER_PID/exe"), not clipxai-bin"
if [ -z "${OMP_WAIT_POLICY+set}" ]; then
  for line in 'OMP_WAIT_POLICY=passive' 'OPENBLAS_THREAD_TIMEOUT=.*' 'GLIBC_TUNABLES=.*'; do
    tr '\0' '\n' <"/proc/$SERVER_PID/environ" | grep -qx "$line" ||
      fail "the engine was started without $line"
  done
fi

# post_status FIELDS... — POSTs the curl -F fields to /api/explain; prints the status, keeps the
# body in $TMP/body.
post_status() {
  curl -s -o "$TMP/body" -w '%{http_code}' --max-time 60 "$@" "$URL/api/explain"
}

# The good request: the CLI's result object, overlays as PNG data URLs.
status=$(post_status -F "image=@$IMAGE" -F prompt=girl -F prompt=boy)
[ "$status" = 200 ] || fail "a good request: $status $(cat "$TMP/body")"
"$BIN" explain --out "$TMP/cli" --json "$TMP/cli.json" "$IMAGE" girl boy >/dev/null
"$PY" - "$TMP/body" "$TMP/cli.json" <<'EOF' || fail "the answer is not the CLI's result object"
import base64, json, sys
served = json.load(open(sys.argv[1]))
cli = json.load(open(sys.argv[2]))["results"][0]
for prompt in served["prompts"]:
    assert prompt["overlay"].startswith("data:image/png;base64,"), prompt["overlay"][:40]
    assert base64.b64decode(prompt["overlay"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "heatmap" not in prompt, "layers only when asked"
for document in (served, cli):
    for prompt in document["prompts"]:
        prompt.pop("overlay")
    document.pop("image")
assert served == cli, (served, cli)
EOF

# The phrases API and an explanation of a sentence's phrases.
curl -s -F text="a girl and a boy at a desktop computer" "$URL/api/phrases" >"$TMP/phrases.json"
"$PY" - "$TMP/phrases.json" <<'EOF' || fail "/api/phrases: $(cat "$TMP/phrases.json")"
import json, sys
phrases = json.load(open(sys.argv[1]))["phrases"]
assert phrases == [{"text": "a girl", "start": 0, "end": 6}, {"text": "a boy", "start": 11, "end": 16},
                   {"text": "a desktop computer", "start": 20, "end": 38}], phrases
EOF
status=$(post_status -F example=girl_boy_desktop.png -F "phrases=a girl and a boy" -F layers=true)
[ "$status" = 200 ] || fail "phrases: $status $(cat "$TMP/body")"
"$PY" - "$TMP/body" <<'EOF' || fail "phrases: $(head -c 300 "$TMP/body")"
import json, sys
answer = json.load(open(sys.argv[1]))
assert [(p["text"], p.get("span")) for p in answer["prompts"]] == [
    ("a girl and a boy", None), ("a girl", [0, 6]), ("a boy", [11, 16])], answer["prompts"]
assert answer["backdrop"].startswith("data:image/png;base64,")
assert all(p["heatmap"].startswith("data:image/png;base64,") for p in answer["prompts"])
EOF

# Bad requests: STATUS | CATEGORY | words of the message | curl arguments.
printf 'not an image' >"$TMP/text.png"
head -c 2000 "$IMAGE" >"$TMP/truncated.png"
: >"$TMP/empty.png"
head -c 400000 /dev/urandom >"$TMP/big.bin"
"$PY" - "$TMP/bomb.png" <<'EOF'
import struct, sys, zlib
def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
header = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
idat = zlib.compress(b"\0" * 1000)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) +
                              chunk(b"IEND", b""))
EOF
bad_utf8=$(printf 'a \xff\xfe dog')
while IFS='|' read -r expected category words arguments; do
  [ -n "$expected" ] || continue
  eval "set -- $arguments"
  status=$(post_status "$@")
  [ "$status" = "$expected" ] || fail "[$words] answered $status, expected $expected: $(cat "$TMP/body")"
  "$PY" - "$TMP/body" "$category" "$words" <<'EOF' || fail "[$words] body: $(cat "$TMP/body")"
import json, sys
body = json.load(open(sys.argv[1]))
assert set(body) == {"error", "category"}, body
assert body["category"] == sys.argv[2], body
assert sys.argv[3].lower() in body["error"].lower(), body
EOF
  curl -sf "$URL/healthz" >/dev/null || fail "/healthz stopped answering after [$words]"
done <<EOF
415|input|is not an image|-F "image=@$TMP/text.png" -F prompt=girl
422|input|truncated|-F "image=@$TMP/truncated.png" -F prompt=girl
400|usage|is empty (0 bytes)|-F "image=@$TMP/empty.png" -F prompt=girl
413|input|upload limit|-F "image=@$TMP/big.bin" -F prompt=girl
413|input|100000x100000 pixels|-F "image=@$TMP/bomb.png" -F prompt=girl
413|input|over the limit of 4 (--max-prompts)|-F "image=@$IMAGE" -F prompt=a -F prompt=b -F prompt=c -F prompt=d -F prompt=e
413|input|over the limit of 40 (--max-prompt-bytes)|-F "image=@$IMAGE" -F "prompt=a photo of a girl standing next to a very large boy"
422|input|not valid UTF-8|-F "image=@$IMAGE" -F "prompt=$bad_utf8"
422|input|not valid UTF-8|-F "image=@$IMAGE" -F "phrases=$bad_utf8"
400|usage|no image|-F prompt=girl
400|usage|no prompts|-F "image=@$IMAGE"
400|usage|not both|-F "image=@$IMAGE" -F example=girl_boy_desktop.png -F prompt=girl
400|usage|unknown example 'passwd'|-F example=passwd -F prompt=girl
400|usage|unknown example '../../etc/passwd'|-F example=../../etc/passwd -F prompt=girl
400|usage|unknown method|-F "image=@$IMAGE" -F prompt=girl -F method=magic
400|usage|unknown field 'colour'|-F "image=@$IMAGE" -F prompt=girl -F colour=red
400|usage|field 'method' is given twice|-F "image=@$IMAGE" -F prompt=girl -F method=rollout -F method=gradcam
400|usage|field 'alpha'|-F "image=@$IMAGE" -F prompt=girl -F alpha=nan
400|usage|field 'crop'|-F "image=@$IMAGE" -F prompt=girl -F crop=zoom
400|usage|field 'start_layer'|-F "image=@$IMAGE" -F prompt=girl -F start_layer=two
400|usage|start layer|-F "image=@$IMAGE" -F prompt=girl -F start_layer=99
400|usage|expected NAME=VALUE|-F "image=@$IMAGE" -F prompt=girl -F param=target
400|usage|multipart/form-data|--data prompt=girl
EOF

status=$(curl -s -o "$TMP/body" -w '%{http_code}' "$URL/api/nothing")
[ "$status" = 404 ] || fail "an unknown path: $status"
status=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST "$URL/api/phrases")
[ "${status:0:1}" = 4 ] || fail "/api/phrases without text: $status"
grep -q '"error"' "$TMP/body" || fail "/api/phrases without text: $(cat "$TMP/body")"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "the server's exit after SIGTERM: $?"

# One worker and no queue: while a big image is being explained, another request is 503 with
# Retry-After at once; SIGTERM then still answers the request in flight, and the server exits 0.
"$PY" - "$TMP/large.png" <<'EOF'
import numpy as np
from PIL import Image
import sys
y, x = np.mgrid[0:2400, 0:3000]
rgb = np.stack([x % 256, y % 256, (x * y) % 256], axis=-1).astype(np.uint8)
Image.fromarray(rgb).save(sys.argv[1], compress_level=1)
EOF
start_server "$TMP/queue.log" --workers 1 --queue 0 --max-upload-bytes 100000000 --request-timeout 3
# Connections that hold every thread and fill the waiting queue (one worker and no queue: 6
# threads, 6 waiting): those beyond are answered 503 at once, and once they are gone the server
# answers again.
"$PY" - "${URL#http://}" <<'EOF' || fail "a flood of idle connections"
import socket, subprocess, sys, time
host, port = sys.argv[1].split(":")
idle = [socket.create_connection((host, int(port))) for _ in range(20)]
time.sleep(1)
turned_away = 0
for connection in idle:
    connection.setblocking(False)
    try:
        turned_away += connection.recv(100).startswith(b"HTTP/1.1 503")
    except BlockingIOError:
        pass
assert 1 <= turned_away <= 20 - 6, f"{turned_away} of 20 idle connections turned away"
for connection in idle:
    connection.close()
time.sleep(0.5)
status = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                         f"http://{host}:{port}/healthz"], capture_output=True, text=True).stdout
assert status == "200", f"after the idle connections closed: {status}"
EOF

# A client sending a byte a second is dropped after --request-timeout (3 s), not served.
"$PY" - "${URL#http://}" <<'EOF' || fail "a trickling client was not dropped"
import socket, sys, time
host, port = sys.argv[1].split(":")
started = time.monotonic()
connection = socket.create_connection((host, int(port)))
connection.settimeout(1.5)
request = b"POST /api/explain HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
try:
    for byte in request + b"x" * 100:
        connection.send(bytes([byte]))
        time.sleep(1 if byte == ord("x") else 0)
        try:
            if connection.recv(1024) == b"":
                break
        except socket.timeout:
            pass
except (BrokenPipeError, ConnectionResetError):
    pass
took = time.monotonic() - started
assert took < 10, f"still connected after {took:.1f} s"
EOF

curl -s -o "$TMP/slow_body" -w '%{http_code}' --max-time 120 -F "image=@$TMP/large.png" \
  -F prompt=a -F prompt=b -F prompt=c -F prompt=d -F prompt=e -F prompt=f -F prompt=g \
  -F prompt=h -F prompt=i -F prompt=j -F prompt=k -F prompt=l -F prompt=m -F prompt=n \
  -F prompt=o -F prompt=p "$URL/api/explain" >"$TMP/slow_status" &
slow=$!
sleep 1  # its upload is in and its explanation (16 prompts, seconds long) has begun
status=none
while kill -0 "$slow" 2>/dev/null; do
  status=$(curl -s -D "$TMP/headers" -o "$TMP/body" -w '%{http_code}' -F "image=@$IMAGE" \
    -F prompt=girl "$URL/api/explain")
  [ "$status" = 503 ] && break
  sleep 0.05
done
[ "$status" = 503 ] || fail "a request while the only worker was busy: $status (expected 503)"
grep -qi '^Retry-After: [0-9]' "$TMP/headers" || fail "503 without Retry-After: $(cat "$TMP/headers")"
grep -q '"error"' "$TMP/body" || fail "503 body: $(cat "$TMP/body")"

kill -TERM "$SERVER_PID"
wait "$slow"
[ "$(cat "$TMP/slow_status")" = 200 ] ||
  fail "the request in flight at SIGTERM: $(cat "$TMP/slow_status") $(head -c 300 "$TMP/slow_body")"
wait "$SERVER_PID" || fail "the server's exit after SIGTERM with a request in flight: $?"
grep -q 'stopped' "$TMP/queue.log" || fail "no 'stopped' line: $(cat "$TMP/queue.log")"
echo "ok: serve API"
