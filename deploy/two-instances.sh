#!/usr/bin/env bash
# Two phone-verify instances sharing one Redis on this machine: the arrangement a load
# balancer would sit in front of, to try by hand. A verification started on one instance
# is checked on the other; the console provider prints the codes here.
#   deploy/two-instances.sh          # instances on 127.0.0.1:8081 and :8082, Redis on :6390
# Ctrl-C (or SIGTERM) stops all three. Settings from the environment apply to both
# instances (e.g. PHONE_VERIFY__API__KEYS); these choose the rest:
#   PHONE_VERIFY_BIN (default: phone-verify on PATH), PORT_A, PORT_B, REDIS_PORT,
#   PHONE_VERIFY__SERVER__SECRET (default: a random one, shared by both).
set -euo pipefail

bin="${PHONE_VERIFY_BIN:-phone-verify}"
port_a="${PORT_A:-8081}"
port_b="${PORT_B:-8082}"
redis_port="${REDIS_PORT:-6390}"
secret="${PHONE_VERIFY__SERVER__SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
data="$(mktemp -d)"
pids=()

stop() {
  trap - EXIT INT TERM
  [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$data"
}
trap stop EXIT INT TERM

redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
  --dir "$data" --daemonize no --loglevel warning &
pids+=($!)
for _ in $(seq 1 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done

for port in "$port_a" "$port_b"; do
  PHONE_VERIFY__SERVER__BIND="127.0.0.1:$port" \
  PHONE_VERIFY__SERVER__PUBLIC_URL="${PHONE_VERIFY__SERVER__PUBLIC_URL:-http://127.0.0.1:$port}" \
  PHONE_VERIFY__SERVER__SECRET="$secret" \
  PHONE_VERIFY__STORE__BACKEND=redis \
  PHONE_VERIFY__STORE__REDIS_URL="redis://127.0.0.1:$redis_port" \
    "$bin" &
  pids+=($!)
done

echo "phone-verify on http://127.0.0.1:$port_a and http://127.0.0.1:$port_b, Redis on $redis_port" >&2
# Whichever stops first (or a signal) stops the rest.
wait -n
