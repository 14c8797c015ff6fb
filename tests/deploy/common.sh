# What the deployment tests share; sourced after setting `test_name` (the test's
# name, for its messages). Each test defines `client` (runs `fanout` against
# its cluster) and `cleanup` (takes the cluster down).

fail() { echo "$test_name: $*" >&2; exit 1; }
step() { printf '==> %s\n' "$*"; }
# Prints the Python expression $1 over `d`, the last line of stdin as JSON.
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print($1)"; }

# Exits 77 (ctest: skipped) when no Docker engine answers, unless
# FANOUT_REQUIRE_DOCKER=1 (CI), where that is a failure.
require_docker() {
  docker info >/dev/null 2>&1 && return 0
  [[ "${FANOUT_REQUIRE_DOCKER:-0}" == 1 ]] &&
    fail "no Docker engine answers, and FANOUT_REQUIRE_DOCKER=1"
  echo "$test_name: no Docker engine answers; skipped"
  exit 77
}

# Runs `cleanup` on exit, also when killed, interrupted or writing into a
# closed pipe (`... | head`), so no cluster is left behind.
clean_up_on_exit() {
  trap cleanup EXIT
  trap 'exit 129' HUP PIPE
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Waits up to a minute for the coordinator to list $1 workers.
wait_workers() {
  local want=$1 got=0
  for _ in $(seq 1 60); do
    got=$(client status --json 2>/dev/null | json 'len(d["workers"])' 2>/dev/null || true)
    [[ "$got" == "$want" ]] && return 0
    sleep 1
  done
  fail "the coordinator lists ${got:-no} workers, not $want"
}
