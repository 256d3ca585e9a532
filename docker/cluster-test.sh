#!/usr/bin/env bash
# The Docker cluster test: real containers, driven from the host with the host-built CLI.
#
#   docker/cluster-test.sh [DEJA_CLI]       (ctest: the docker_cluster test, label "docker")
#
# 1. builds the base image if it is missing (docker/build-base-image.sh) and the project image;
# 2. brings up docker/compose.yaml (scheduler + worker1..3, 1 slot each, --worker_timeout=3s)
#    under a unique project name, the scheduler published on a free port of 127.0.0.1;
# 3. runs examples/pipeline/pipeline.yaml twice: every node of the second run is reused;
# 4. reuses a job whose workspace is on a busy worker: another worker container pulls it;
# 5. `docker kill`s the worker of a long job: the job finishes on another worker;
# 6. restarts the scheduler container: its jobs are still there, an identical submit is reused;
# 7. builds a small job image on the host, pushes it (deja image push) and removes it from the
#    engine, then runs a job in it: a worker loads it from the content store and runs it in a
#    container of the host's engine (docker/compose.engine.yaml);
# and tears everything down with its volumes (`down -v`), also on failure or interrupt.
#
# Exit 0 when every check passed, or (printing "SKIPPED: ...") when no Docker engine is
# reachable; 1 on a failure. Environment: DEJA_CLI (the CLI, else the argument, else
# build/client/deja), DEJA_TEST_IMAGE (deja:cluster-test), DEJA_TEST_KEEP=1 (leave the
# cluster up for a look; tear it down yourself with the printed command).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cli="${1:-${DEJA_CLI:-$root/build/client/deja}}"
image="${DEJA_TEST_IMAGE:-deja:cluster-test}"
project="dejatest-$$-$(printf '%04x' $((RANDOM)))"
start_time=$SECONDS
failures=0

say() { printf '[%4ds] %s\n' $((SECONDS - start_time)) "$*"; }
pass() { say "PASS: $*"; }
fail() { say "FAIL: $*"; failures=$((failures + 1)); }
# A failure the rest cannot go on from.
abort() { say "FAIL: $*"; failures=$((failures + 1)); exit 1; }

# ------------------------------------------------------------------------- preconditions
if ! docker info >/dev/null 2>&1; then
  echo "SKIPPED: no Docker engine reachable (docker info failed)"
  exit 0
fi
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose_cmd=(docker-compose)
else
  echo "SKIPPED: a Docker engine but neither 'docker compose' nor 'docker-compose'"
  exit 0
fi
command -v jq >/dev/null 2>&1 || abort "jq is needed (apt-get install jq)"
[ -x "$cli" ] || abort "no deja CLI at $cli (build it, or pass its path)"
"$cli" pipeline --help >/dev/null 2>&1 || abort "$cli has no 'pipeline' command"

work="$(mktemp -d "${TMPDIR:-/tmp}/deja-cluster-test.XXXXXX")"
compose() {
  DEJA_IMAGE="$image" DEJA_PUBLISH="127.0.0.1:$port" DEJA_WORKER_TIMEOUT=3s DEJA_SLOTS=1 \
    DEJA_DOCKER_GID="$(stat -c %g /var/run/docker.sock)" \
    "${compose_cmd[@]}" -p "$project" -f "$root/docker/compose.yaml" \
    -f "$root/docker/compose.engine.yaml" -f "$root/tests/docker/compose.test.yaml" "$@"
}
teardown() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "${port:-}" ]; then
    if [ "$failures" -gt 0 ] || [ "$rc" -ne 0 ]; then
      say "logs of the cluster (last lines of each container):"
      compose logs --no-color --tail=40 2>&1 | sed 's/^/    /'
    fi
    if [ "${DEJA_TEST_KEEP:-0}" = 1 ]; then
      say "kept: DEJA_SCHEDULER=127.0.0.1:$port; tear down with:"
      say "  ${compose_cmd[*]} -p $project -f docker/compose.yaml down -v"
    else
      say "tearing down (down -v)"
      compose down -v --remove-orphans -t 2 >"$work/down.log" 2>&1 ||
        { cat "$work/down.log"; say "FAIL: compose down -v"; rc=1; }
    fi
  fi
  rm -rf "$work"
  if [ "$failures" -gt 0 ] || [ "$rc" -ne 0 ]; then
    say "cluster test FAILED ($failures failed check(s))"
    [ "$rc" -ne 0 ] || rc=1
  else
    say "cluster test PASSED"
  fi
  exit "$rc"
}
trap teardown EXIT
trap 'say "interrupted"; exit 130' INT TERM

# A run killed outright (SIGKILL, a ctest timeout) could not tear down: remove what such runs
# left, found by the compose project label dejatest-<pid>-<hex> of a process that is gone.
for p in $( { docker ps -a --format '{{.Label "com.docker.compose.project"}}'
              docker volume ls --format '{{.Label "com.docker.compose.project"}}'; } 2>/dev/null |
            grep -E '^dejatest-[0-9]+-[0-9a-f]+$' | sort -u); do
  pid="${p#dejatest-}"; pid="${pid%-*}"
  kill -0 "$pid" 2>/dev/null && continue
  say "removing leftovers of an earlier run: $p"
  docker ps -aq --filter "label=com.docker.compose.project=$p" | xargs -r docker rm -f >/dev/null 2>&1
  docker volume ls -q --filter "label=com.docker.compose.project=$p" | xargs -r docker volume rm >/dev/null 2>&1
  docker network ls -q --filter "label=com.docker.compose.project=$p" | xargs -r docker network rm >/dev/null 2>&1
done

# --------------------------------------------------------------------------------- images
say "using ${compose_cmd[*]} ($("${compose_cmd[@]}" version --short 2>/dev/null || echo '?')), CLI $cli"
"$root/docker/build-base-image.sh" || abort "building the base image (docker/build-base-image.sh)"
# BuildKit where the buildx plugin is installed, else the classic builder (the Dockerfile
# uses no BuildKit-only syntax).
# The classic builder keeps the containers of failed steps unless --force-rm.
build_flags=()
if ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
  build_flags=(--force-rm)
fi
say "building $image (docker/Dockerfile; cached layers make a rebuild quick)"
t0=$SECONDS
# The build stage is tagged too ($image-build), so it stays the cache of the next build and
# only images of earlier builds become dangling; those (labelled org.deja.stage, older than
# an hour so that no concurrent build needs them) are removed.
{ docker build "${build_flags[@]}" -f "$root/docker/Dockerfile" --target build -t "$image-build" "$root" &&
  docker build "${build_flags[@]}" -f "$root/docker/Dockerfile" -t "$image" "$root"; } >"$work/build.log" 2>&1 ||
  { tail -n 40 "$work/build.log"; abort "docker build"; }
pass "image $image built in $((SECONDS - t0))s"
for stage in build runtime; do
  docker image prune -f --filter "label=org.deja.stage=$stage" --filter until=1h >/dev/null 2>&1 || true
done

# ---------------------------------------------------------------------------------- up
# A free port of 127.0.0.1 for the scheduler, so parallel runs do not collide.
for _ in $(seq 1 50); do
  port=$((20000 + RANDOM % 30000))
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
done
export DEJA_SCHEDULER="127.0.0.1:$port"
deja() { "$cli" --timeout 20 "$@"; }

say "compose up: project $project, scheduler on $DEJA_SCHEDULER"
t0=$SECONDS
compose up -d --no-build >"$work/up.log" 2>&1 || { cat "$work/up.log"; abort "compose up"; }

# Every container healthy (docker's HEALTHCHECK), then the 3 workers connected.
deadline=$((SECONDS + 180))
while :; do
  ids="$(compose ps -q 2>/dev/null)"
  states="$(for c in $ids; do docker inspect -f '{{.State.Health.Status}}' "$c"; done | sort | uniq -c | xargs)"
  [ "$(echo "$ids" | grep -c .)" -eq 4 ] && [ "$states" = "4 healthy" ] && break
  [ $SECONDS -lt $deadline ] || abort "containers not healthy after 180s: $states"
  sleep 2
done
pass "4 containers healthy (health checks) after $((SECONDS - t0))s"

# TLS and tokens are on: the host's CLI takes the cluster's CA and admin token from the
# scheduler's volume, as docs/deploy.md says.
compose exec -T scheduler cat /var/lib/deja/tls/ca.crt >"$work/ca.crt" || abort "no CA in the scheduler"
compose exec -T scheduler cat /var/lib/deja/admin.token >"$work/admin.token" || abort "no admin token"
export DEJA_TLS_CA="$work/ca.crt" DEJA_TOKEN_FILE="$work/admin.token"

connected_workers() { deja --json workers 2>/dev/null | jq -r '(.workers // [.])[] | select(.connected) | .worker_id' | sort | xargs; }
wait_workers() {  # $1: "worker1 worker2 worker3"
  local deadline=$((SECONDS + 90))
  until [ "$(connected_workers)" = "$1" ]; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 1
  done
}
wait_workers "worker1 worker2 worker3" || abort "workers connected: '$(connected_workers)' (want worker1..3)"
pass "scheduler sees worker1 worker2 worker3, advertising $(deja --json workers | jq -r '(.workers // [.])[] | .advertise' | xargs)"

# ----------------------------------------------------------------------------- helpers
job_json() { deja --json status "$1"; }
field() { job_json "$1" | jq -r ".$2 // empty"; }
# Waits until job $1 is in a final state (or $2 seconds pass) and prints its state.
await_job() {
  local job="$1" deadline=$((SECONDS + ${2:-120})) state
  while :; do
    state="$(field "$job" state)"
    case "$state" in SUCCEEDED | FAILED | CANCELLED) echo "$state"; return 0 ;; esac
    [ $SECONDS -lt $deadline ] || { echo "${state:-unknown}"; return 1; }
    sleep 0.5
  done
}
# Waits until job $1 is RUNNING (prints its worker).
await_running() {
  local deadline=$((SECONDS + ${2:-60}))
  until [ "$(field "$1" state)" = RUNNING ]; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.3
  done
  field "$1" worker_id
}
submit() { deja submit "$@" | awk '{print $1; exit}'; }
container_of() { compose ps -q "$1"; }  # worker id = compose service name

# ------------------------------------------------------------------ 1. the example pipeline
pipeline="$root/examples/pipeline/pipeline.yaml"
if [ -f "$pipeline" ]; then
  if deja pipeline run --project ct-pipeline "$pipeline" >"$work/p1.log" 2>&1; then
    pass "pipeline run 1 succeeded ($(grep -c . "$work/p1.log") lines of progress)"
    if deja --json pipeline run --project ct-pipeline "$pipeline" >"$work/p2.json" 2>"$work/p2.err"; then
      p2="$(tail -n 1 "$work/p2.json")"
      nodes="$(jq -r '.nodes | length' <<<"$p2")"
      not_reused="$(jq -r '[.nodes[] | select((.reused_from // "") == "") | .name] | join(" ")' <<<"$p2")"
      if [ "$nodes" -ge 1 ] && [ -z "$not_reused" ]; then
        pass "pipeline run 2: all $nodes nodes reused ($(jq -r '[.nodes[] | "\(.name)<-\(.reused_from)"] | join(", ")' <<<"$p2"))"
      else
        fail "pipeline run 2: nodes not reused: '$not_reused' of $nodes"; cat "$work/p2.json"
      fi
    else
      fail "pipeline run 2 failed"; cat "$work/p2.json" "$work/p2.err"
    fi
  else
    fail "pipeline run 1 failed"; cat "$work/p1.log"
  fi
else
  fail "no $pipeline"
fi

# ------------------------------------------- 2. a reuse whose source is on another worker
xfer_job=(--project ct-xfer --name train --version 1 --output model.bin -- sh -c
  'mkdir -p work; head -c 3000000 /dev/urandom > work/inter.dat; cp work/inter.dat model.bin; echo trained')
src="$(submit "${xfer_job[@]}")"
if [ "$(await_job "$src")" = SUCCEEDED ]; then
  holder="$(field "$src" worker_id)"
  # Keep the holder's only slot busy, so the reuse must go to another worker.
  blocker="$(submit --project ct-xfer --memoization off --platform node="$holder" -- sleep 600)"
  if [ "$(await_running "$blocker")" = "$holder" ]; then
    reuse="$(submit "${xfer_job[@]}")"
    state="$(await_job "$reuse")"
    from="$(field "$reuse" reused_from)"
    on="$(field "$reuse" worker_id)"
    if [ "$state" = SUCCEEDED ] && [ "$from" = "$src" ] && [ -n "$on" ] && [ "$on" != "$holder" ]; then
      ws=/var/lib/deja-worker/jobs
      a="$(docker exec "$(container_of "$holder")" sha256sum "$ws/$src/work/inter.dat" | awk '{print $1}')"
      b="$(docker exec "$(container_of "$on")" sha256sum "$ws/$reuse/work/inter.dat" | awk '{print $1}')"
      marker="$(docker exec "$(container_of "$on")" cat "$ws/$reuse/REUSED" 2>&1)"
      logs="$(deja logs "$reuse" 2>&1)"
      if [ -n "$a" ] && [ "$a" = "$b" ] && grep -q "$src" <<<"$marker" && grep -q trained <<<"$logs"; then
        pass "reuse $reuse of $src: workspace pulled from $holder to $on (work/inter.dat identical, REUSED marker, logs copied)"
      else
        fail "reuse $reuse on $on: intermediate file $a vs $b, REUSED '$marker', logs '$logs'"
      fi
    else
      fail "reuse of $src (held by $holder, busy): state $state, reused_from '$from', worker '$on'; $(field "$reuse" message)"
    fi
  else
    fail "blocker $blocker did not start on $holder"
  fi
  deja cancel "$blocker" >/dev/null 2>&1
  await_job "$blocker" 30 >/dev/null
else
  fail "source job $src did not succeed: $(field "$src" message)"
fi

# --------------------------------------------------- 3. docker kill the worker of a long job
long="$(submit --project ct-kill --memoization off --output done.txt -- sh -c 'sleep 12; hostname > done.txt')"
victim="$(await_running "$long")"
if [ -n "$victim" ]; then
  docker kill "$(container_of "$victim")" >/dev/null
  say "killed $victim (container $(container_of "$victim" | cut -c1-12)) while it ran $long"
  state="$(await_job "$long" 120)"
  on="$(field "$long" worker_id)"
  attempt="$(field "$long" attempt)"
  if [ "$state" = SUCCEEDED ] && [ -n "$on" ] && [ "$on" != "$victim" ] && [ "${attempt:-1}" -ge 2 ]; then
    pass "$long finished on $on (attempt $attempt) after $victim was killed"
  else
    fail "$long after killing $victim: state $state on '$on', attempt '$attempt'; $(field "$long" message)"
  fi
  # Bring the killed worker back (same volume, same id).
  compose start "$victim" >/dev/null 2>&1
  wait_workers "worker1 worker2 worker3" || fail "$victim did not come back: '$(connected_workers)'"
else
  fail "$long never ran"
fi

# ------------------------------------------------- 4. restart the scheduler: state is kept
before="$(deja --json ls --project ct-xfer 2>/dev/null | grep -c .)"
compose restart -t 10 scheduler >/dev/null 2>&1 || fail "compose restart scheduler"
deadline=$((SECONDS + 90))
until [ "$(docker inspect -f '{{.State.Health.Status}}' "$(container_of scheduler)")" = healthy ]; do
  [ $SECONDS -lt $deadline ] || { fail "scheduler not healthy after its restart"; break; }
  sleep 1
done
if wait_workers "worker1 worker2 worker3"; then
  pass "scheduler restarted; the 3 workers reconnected"
else
  fail "after the scheduler's restart, workers connected: '$(connected_workers)'"
fi
if [ -n "${src:-}" ] && [ "$(field "$src" state)" = SUCCEEDED ]; then
  again="$(submit "${xfer_job[@]}")"
  state="$(await_job "$again")"
  from="$(field "$again" reused_from)"
  if [ "$state" = SUCCEEDED ] && [ "$from" = "$src" ]; then
    pass "after the restart: $src still SUCCEEDED, an identical submit $again reused it ($(field "$again" worker_id))"
  else
    fail "after the restart: $again state $state, reused_from '$from' (want $src); $(field "$again" message)"
  fi
else
  fail "after the restart: earlier job '${src:-}' lost (state '$(field "${src:-none}" state)')"
fi
after="$(deja --json ls --project ct-xfer 2>/dev/null | grep -c .)"
[ "$after" -gt "$before" ] && [ "$before" -gt 0 ] ||
  fail "jobs listed in ct-xfer: $before before the restart, $after after (plus one new)"

# ------------------------------------- 5. a rogue client: every call without the right is refused
# With no token, with a reader token of another project, and in plaintext; nothing stored
# changes, and the scheduler's audit log has every refusal.
jobs_before="$(deja --json ls 2>/dev/null | grep -c .)"
other="$(deja token create --project ct-other --role reader --description rogue 2>/dev/null)"
[ -n "$other" ] || fail "deja token create --project ct-other --role reader"
target="${src:-j1}"
rogue_calls=(
  "submit --project ct-xfer -- sh -c 'echo stolen'"
  "ls --project ct-xfer"
  "status $target"
  "logs $target"
  "get $target --out $work/stolen"
  "cancel $target"
  "explain $target"
  "cache ls --project ct-xfer"
  "cache evict --project ct-xfer --app sh"
  "project set ct-xfer --retention 1"
  "stats --project ct-xfer"
  "pipeline ls --project ct-pipeline"
  "token create --role worker"
  "token ls"
  "audit"
)
refused=0
for call in "${rogue_calls[@]}"; do
  # No token at all: unauthenticated.
  if (export DEJA_TOKEN_FILE=; eval "deja $call") >"$work/rogue.out" 2>"$work/rogue.err" ||
     ! grep -q "unauthenticated" "$work/rogue.err"; then
    fail "no token: deja $call was not refused ($(cat "$work/rogue.err"))"
  else
    refused=$((refused + 1))
  fi
  # Another project's reader: permission denied.
  if (export DEJA_TOKEN_FILE= DEJA_TOKEN="$other"; eval "deja $call") >"$work/rogue.out" 2>"$work/rogue.err" ||
     ! grep -q "permission denied: token t[0-9]* (project ct-other, reader) cannot" "$work/rogue.err"; then
    fail "reader of ct-other: deja $call was not refused ($(cat "$work/rogue.err"))"
  else
    refused=$((refused + 1))
  fi
done
# Plaintext against the TLS port: the handshake fails, nothing is read.
if deja --insecure ls >"$work/rogue.out" 2>"$work/rogue.err"; then
  fail "a plaintext client was answered"
else
  refused=$((refused + 1))
fi
jobs_after="$(deja --json ls 2>/dev/null | grep -c .)"
denied="$(deja --json audit --denied --limit 1000 | grep -c '"denied":true')"
if [ "$jobs_after" = "$jobs_before" ] && [ "$denied" -ge $((refused - 1)) ]; then
  pass "rogue client: $refused calls refused (no token, another project's reader, plaintext); jobs unchanged ($jobs_after); $denied denials in the audit log"
else
  fail "rogue client: jobs $jobs_before -> $jobs_after, $denied denials audited for $refused refusals"
fi

# ------------------------------------------- 7. an image pushed from the host, run in a worker
job_image="deja-test-job:$project"
if [ ! -x /bin/busybox ]; then
  fail "no /bin/busybox to build the job image (apt-get install busybox-static)"
elif ! image_id="$("$root/tests/containers/make_job_image.sh" "$job_image" "$project" 2>"$work/img.err")"; then
  fail "building the job image: $(cat "$work/img.err")"
elif ! deja image push "$job_image" >"$work/push.out" 2>&1; then
  fail "deja image push: $(cat "$work/push.out")"
else
  docker rmi "$job_image" >/dev/null 2>&1  # no engine has it now: a worker must load it
  img_job="$(submit --project ct-image --image "$job_image" --output release.txt -- \
              sh -c 'head -1 /etc/os-release | tee release.txt')"
  state="$(await_job "$img_job" 180)"
  out="$(deja logs "$img_job" 2>/dev/null)"
  if [ "$state" = SUCCEEDED ] && [ "$out" = "PRETTY_NAME=\"Deja test image $project\"" ] &&
     [ "$(field "$img_job" image_id)" = "$image_id" ]; then
    pass "$img_job ran in $job_image ($image_id) on $(field "$img_job" worker_id), loaded from the content store"
  else
    fail "image job $img_job: $state, output '$out', image $(field "$img_job" image_id) (want $image_id): $(field "$img_job" message)"
  fi
  left="$(docker ps -aq --filter label=org.deja.job="$img_job" | grep -c .)"
  [ "$left" = 0 ] || fail "$left container(s) of $img_job left behind"
  docker rmi -f "$image_id" >/dev/null 2>&1 || true
fi

[ "$failures" -eq 0 ]
