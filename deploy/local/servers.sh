# servers.sh - a private RabbitMQ node and a private Redis, for local runs and tests.
#
# Sourced by bash scripts (deploy/local/run, tests/run); defines functions only.
#
# Everything about one set of servers lives in one state directory: the
# environment of the RabbitMQ node, pid files, data and logs. A function needs
# nothing but that directory, so any process - e.g. an integration test that
# stops the broker and starts it again - acts on the very same servers (same
# ports, same data dir, so durable queues survive a restart).
#
# Typical use:
#   rb_pick_port amqp; rb_pick_port dist; rb_pick_port epmd; rb_pick_port redis
#   rb_rabbit_init "$dir" "mynode-$$@localhost" "$amqp" "$dist" "$epmd"
#   rb_redis_init "$dir" "$redis"
#   rb_rabbit_start "$dir" && rb_redis_start "$dir"
#   ...
#   rb_servers_stop "$dir"   # broker, its epmd and Redis; safe to repeat
#
# Servers run in their own session (setsid), with stdio on log files: Ctrl-C
# in a terminal only reaches the calling script, whose trap stops them in
# order, and a caller that captures output (a test running broker-start) is
# not kept waiting for pipes held open by a daemon.
#
# Every wait is bounded. Processes are only ever signalled by the pid recorded
# when they were started.

# Results (RB_*_SECONDS) are left in globals for the caller; the control
# scripts' bodies are written unexpanded on purpose.
# shellcheck disable=SC2034,SC2016
RB_SERVERS_LIB=$(realpath "${BASH_SOURCE[0]}")
RB_RABBIT_SBIN=${RB_RABBIT_SBIN:-/usr/lib/rabbitmq/bin}
RB_START_TIMEOUT=${RB_START_TIMEOUT:-60}
RB_STOP_TIMEOUT=${RB_STOP_TIMEOUT:-30}

# Ports handed out by rb_pick_port in this shell, so that two picks made
# before anything listens do not return the same port.
RB_PICKED_PORTS=${RB_PICKED_PORTS:-}

rb_err() { printf '%s\n' "$*" >&2; }

# rb_now: seconds since the epoch, with microseconds (for deadlines).
rb_now() { printf '%s' "$EPOCHREALTIME"; }

# rb_before DEADLINE: true while the current time is before DEADLINE.
rb_before() { awk -v n="$EPOCHREALTIME" -v d="$1" 'BEGIN { exit !(n < d) }'; }

# rb_deadline SECONDS: the time SECONDS from now.
rb_deadline() { awk -v n="$EPOCHREALTIME" -v s="$1" 'BEGIN { printf "%.6f", n + s }'; }

# rb_elapsed START: seconds since START, one decimal.
rb_elapsed() { awk -v n="$EPOCHREALTIME" -v s="$1" 'BEGIN { printf "%.1f", n - s }'; }

# rb_pid_alive PID: the process exists and is not a zombie. A zombie counts
# as gone: it holds no port and no file, it only waits for its parent to reap it.
rb_pid_alive() {
    local pid=${1:-} stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) } # the command name may hold spaces and parentheses
    [[ ${stat%% *} != [ZX] ]]
}

# rb_pid_from FILE: the pid stored in FILE, or nothing.
rb_pid_from() { if [[ -s $1 ]]; then tr -dc 0-9 <"$1"; fi; }

# rb_wait_gone SECONDS PID...: wait until none of the PIDs is alive.
rb_wait_gone() {
    local deadline pid alive
    deadline=$(rb_deadline "$1")
    shift
    while :; do
        alive=0
        for pid in "$@"; do rb_pid_alive "$pid" && alive=1; done
        ((alive)) || return 0
        rb_before "$deadline" || return 1
        sleep 0.1
    done
}

# rb_kill_pids PID...: TERM, then KILL whatever survives 10 s.
rb_kill_pids() {
    local pid live=()
    for pid in "$@"; do rb_pid_alive "$pid" && live+=("$pid"); done
    ((${#live[@]})) || return 0
    kill -TERM "${live[@]}" 2>/dev/null || true
    rb_wait_gone 10 "${live[@]}" && return 0
    kill -KILL "${live[@]}" 2>/dev/null || true
    rb_wait_gone 5 "${live[@]}"
}

# rb_port_busy PORT: something uses this local TCP port (listening or not).
rb_port_busy() { [[ -n $(ss -Htan "sport = :$1" 2>/dev/null) ]]; }

# rb_port_listening PORT: something listens on PORT. Used before a restart,
# where connections of the previous run may still linger in TIME_WAIT on the
# port (harmless: the servers bind with SO_REUSEADDR).
rb_port_listening() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

# rb_pick_port VAR [PREFERRED]: set VAR to a free TCP port: PREFERRED when it
# is free, else a random one in 20000-29999 (below the kernel's ephemeral
# range, so outgoing connections do not take it in the meantime).
rb_pick_port() {
    local -n rb_out=$1
    local port=${2:-} i
    if [[ -n $port ]] && ! rb_port_busy "$port" && [[ " $RB_PICKED_PORTS " != *" $port "* ]]; then
        rb_out=$port
        RB_PICKED_PORTS+=" $port"
        return 0
    fi
    for ((i = 0; i < 500; i++)); do
        port=$((20000 + RANDOM % 10000))
        [[ " $RB_PICKED_PORTS " == *" $port "* ]] && continue
        rb_port_busy "$port" && continue
        rb_out=$port
        RB_PICKED_PORTS+=" $port"
        return 0
    done
    rb_err "no free TCP port found in 20000-29999"
    return 1
}

# rb_log_tail FILE...: show the end of logs after a failure.
rb_log_tail() {
    local f
    for f in "$@"; do
        [[ -s $f ]] || continue
        rb_err "---- last lines of $f"
        tail -n 25 "$f" >&2
    done
}

# rb_spawn PIDFILE LOG CMD...: start CMD in its own session, stdin from
# /dev/null and output appended to LOG, and record its pid. setsid does not
# fork here (the background child is never a process group leader without job
# control), so the pid recorded is the server's own. Descriptors 3-9 are
# closed so that a lock the caller holds is not inherited by a daemon.
rb_spawn() {
    local pidfile=$1 log=$2
    shift 2
    (
        for fd in 3 4 5 6 7 8 9; do eval "exec $fd>&-"; done
        exec setsid "$@"
    ) </dev/null >>"$log" 2>&1 &
    echo "$!" >"$pidfile"
}

# ---- RabbitMQ ----------------------------------------------------------------

# rb_rabbit_init DIR NODENAME AMQP_PORT DIST_PORT EPMD_PORT
# Write the node's environment and configuration into DIR (created). Keeps an
# existing Erlang cookie and data, so a node re-initialised with the same
# name finds its durable queues again.
rb_rabbit_init() {
    local dir=$1 node=$2 amqp=$3 dist=$4 epmd=$5
    mkdir -p "$dir"
    dir=$(realpath "$dir")
    mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
    # The node and rabbitmqctl authenticate each other with this cookie; Erlang
    # refuses a cookie file that others can read.
    if [[ ! -s $dir/home/.erlang.cookie ]]; then
        (umask 077 && head -c 15 /dev/urandom | base32 >"$dir/home/.erlang.cookie")
    fi
    chmod 600 "$dir/home/.erlang.cookie"
    # No plugins: the management plugin alone doubles the start-up time.
    echo '[].' >"$dir/enabled_plugins"
    : >"$dir/rabbitmq-env.conf" # instead of /etc/rabbitmq/rabbitmq-env.conf
    cat >"$dir/rabbitmq.conf" <<'EOF'
# Private node: the AMQP listener address comes from RABBITMQ_NODE_IP_ADDRESS
# and RABBITMQ_NODE_PORT in rabbit.env.
log.console = false
log.file.level = info
EOF
    # The distribution port and the CLI's own node listen on loopback only.
    local loopback='-kernel inet_dist_use_interface {127,0,0,1}'
    {
        echo "# Environment of the private RabbitMQ node $node (written by servers.sh)."
        printf 'export %s=%q\n' \
            HOME "$dir/home" \
            RABBITMQ_NODENAME "$node" \
            RABBITMQ_NODE_IP_ADDRESS 127.0.0.1 \
            RABBITMQ_NODE_PORT "$amqp" \
            RABBITMQ_DIST_PORT "$dist" \
            ERL_EPMD_PORT "$epmd" \
            ERL_EPMD_ADDRESS 127.0.0.1 \
            RABBITMQ_MNESIA_BASE "$dir/mnesia" \
            RABBITMQ_LOG_BASE "$dir/log" \
            RABBITMQ_PID_FILE "$dir/rabbit.pid" \
            RABBITMQ_CONFIG_FILE "$dir/rabbitmq.conf" \
            RABBITMQ_ENABLED_PLUGINS_FILE "$dir/enabled_plugins" \
            RABBITMQ_CONF_ENV_FILE "$dir/rabbitmq-env.conf" \
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS "$loopback" \
            RABBITMQ_CTL_ERL_ARGS "$loopback" \
            RABBITMQ_SCHEDULER_BUSY_WAIT_THRESHOLD none \
            ERL_CRASH_DUMP "$dir/log/erl_crash.dump"
    } >"$dir/rabbit.env"
}

# rb_rabbit_url DIR: the AMQP URL of the node (vhost "/" spelt %2f, which
# librabbitmq and pika both read as "/"; a bare trailing slash means the
# empty vhost to librabbitmq).
rb_rabbit_url() {
    local port
    port=$(rb__rabbit_var "$1" RABBITMQ_NODE_PORT) || return 1
    printf 'amqp://guest:guest@127.0.0.1:%s/%%2f\n' "$port"
}

rb__rabbit_var() {
    [[ -s $1/rabbit.env ]] || {
        rb_err "$1: no rabbit.env (rb_rabbit_init not run)"
        return 1
    }
    (
        # shellcheck source=/dev/null
        source "$1/rabbit.env"
        printf '%s\n' "${!2}"
    )
}

# rb_rabbitmqctl DIR ARGS...: rabbitmqctl against the private node, killed
# after RB_CTL_TIMEOUT seconds (default 90) should it hang. Refused while the
# node's epmd is down: rabbitmqctl would start a daemonised epmd of its own,
# which nothing would ever stop.
rb_rabbitmqctl() {
    local dir=$1
    shift
    if ! rb_pid_alive "$(rb_pid_from "$dir/epmd.pid")"; then
        rb_err "rabbitmqctl: the private node of $dir is not running (no epmd)"
        return 1
    fi
    (
        # shellcheck source=/dev/null
        source "$dir/rabbit.env"
        # --foreground: stay in the caller's process group, so that Ctrl-C
        # reaches rabbitmqctl instead of being held back until it is done.
        exec timeout --foreground -k 5 "${RB_CTL_TIMEOUT:-90}" \
            "$RB_RABBIT_SBIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" "$@"
    )
}

# rb_epmd_start DIR: the node's own epmd, on its private port and loopback.
# Started here rather than by erl so that its pid is known and it can be
# stopped by pid; it outlives broker restarts and goes with rb_epmd_stop.
rb_epmd_start() {
    local dir=$1 port pid deadline
    pid=$(rb_pid_from "$dir/epmd.pid")
    rb_pid_alive "$pid" && return 0
    port=$(rb__rabbit_var "$dir" ERL_EPMD_PORT) || return 1
    if rb_port_listening "$port"; then
        rb_err "epmd port $port is already in use"
        return 1
    fi
    rb_spawn "$dir/epmd.pid" "$dir/log/epmd.log" epmd -port "$port" -address 127.0.0.1
    pid=$(rb_pid_from "$dir/epmd.pid")
    deadline=$(rb_deadline 10)
    until rb_port_listening "$port"; do
        if ! rb_pid_alive "$pid" || ! rb_before "$deadline"; then
            rb_err "epmd did not start on port $port"
            rb_log_tail "$dir/log/epmd.log"
            rb_kill_pids "$pid"
            return 1
        fi
        sleep 0.05
    done
}

rb_epmd_stop() {
    local dir=$1 pid
    pid=$(rb_pid_from "$dir/epmd.pid")
    rb_kill_pids "$pid" || {
        rb_err "epmd (pid $pid) did not stop"
        return 1
    }
    rm -f "$dir/epmd.pid"
}

# rb_rabbit_running DIR: the node's VM (or its launcher) is alive.
rb_rabbit_running() {
    rb_pid_alive "$(rb_pid_from "$1/rabbit-launcher.pid")" ||
        rb_pid_alive "$(rb_pid_from "$1/rabbit.pid")"
}

# rb_rabbit_start DIR: start the node and wait until it accepts AMQP
# connections (bounded by RB_START_TIMEOUT). Sets RB_RABBIT_START_SECONDS.
rb_rabbit_start() {
    local dir=$1 start deadline port launcher left
    start=$(rb_now)
    deadline=$(rb_deadline "$RB_START_TIMEOUT")
    if rb_rabbit_running "$dir"; then
        rb_err "RabbitMQ node of $dir is already running"
        return 1
    fi
    port=$(rb__rabbit_var "$dir" RABBITMQ_NODE_PORT) || return 1
    if rb_port_listening "$port"; then
        rb_err "AMQP port $port is already in use"
        return 1
    fi
    rb_epmd_start "$dir" || return 1
    rm -f "$dir/rabbit.pid"
    (
        # shellcheck source=/dev/null
        source "$dir/rabbit.env"
        cd "$dir" || exit 1
        # The launcher is a shell that runs the VM and stops it gracefully on
        # TERM; the VM writes its own pid to rabbit.pid.
        rb_spawn "$dir/rabbit-launcher.pid" "$dir/log/server.out" "$RB_RABBIT_SBIN/rabbitmq-server"
    )
    launcher=$(rb_pid_from "$dir/rabbit-launcher.pid")
    # The AMQP listener opens last in the boot; polling the socket table is
    # cheap, while each rabbitmqctl call boots an Erlang VM.
    until rb_port_listening "$port"; do
        if ! rb_pid_alive "$launcher"; then
            rb_err "RabbitMQ node exited during start-up"
            rb_log_tail "$dir/log/server.out" "$dir"/log/*.log
            return 1
        fi
        if ! rb_before "$deadline"; then
            rb_err "RabbitMQ node did not open port $port within ${RB_START_TIMEOUT}s"
            rb_log_tail "$dir/log/server.out" "$dir"/log/*.log
            rb_rabbit_stop "$dir" || true
            return 1
        fi
        sleep 0.1
    done
    left=$(awk -v n="$EPOCHREALTIME" -v d="$deadline" \
        'BEGIN { l = int(d - n); print (l < 5 ? 5 : l) }')
    if ! rb_rabbitmqctl "$dir" -q -t "$left" await_startup >"$dir/log/ctl.out" 2>&1; then
        rb_err "RabbitMQ node did not finish start-up"
        rb_log_tail "$dir/log/ctl.out" "$dir"/log/*.log
        rb_rabbit_stop "$dir" || true
        return 1
    fi
    RB_RABBIT_START_SECONDS=$(rb_elapsed "$start")
}

# rb_children PID: the pids whose parent is PID.
rb_children() {
    local f stat rest
    for f in /proc/[0-9]*/stat; do
        stat=$(cat "$f" 2>/dev/null) || continue
        rest=${stat##*) }
        rest=${rest#* } # drop the state; the parent pid follows
        [[ ${rest%% *} == "$1" ]] && printf '%s\n' "${stat%% *}"
    done
    return 0
}

# rb_rabbit_stop DIR: stop the node (not its epmd) and wait until its VM is
# gone, bounded by RB_STOP_TIMEOUT. A node that cannot be asked to stop (not
# yet registered, e.g. interrupted during start-up) or does not comply is
# terminated by pid: TERM to the launcher, which stops the VM gracefully,
# then KILL. Succeeds at once when the node is not running.
# Sets RB_RABBIT_STOP_SECONDS.
rb_rabbit_stop() {
    local dir=$1 start launcher vm asked=0
    start=$(rb_now)
    RB_RABBIT_STOP_SECONDS=0
    launcher=$(rb_pid_from "$dir/rabbit-launcher.pid")
    vm=$(rb_pid_from "$dir/rabbit.pid")
    rb_pid_alive "$launcher" || launcher=
    rb_pid_alive "$vm" || vm=
    if [[ -z $launcher && -z $vm ]]; then
        rm -f "$dir/rabbit-launcher.pid" "$dir/rabbit.pid"
        return 0
    fi
    # Before the VM has written its pid file, it is known only as the
    # launcher's child.
    [[ -n $vm || -z $launcher ]] || vm=$(rb_children "$launcher")
    if [[ -s $dir/rabbit.pid ]] &&
        RB_CTL_TIMEOUT=$RB_STOP_TIMEOUT rb_rabbitmqctl "$dir" -q stop >"$dir/log/ctl.out" 2>&1; then
        asked=1
    fi
    # shellcheck disable=SC2086 # $vm: none, one or several pids
    if ((!asked)) || ! rb_wait_gone "$RB_STOP_TIMEOUT" $vm $launcher; then
        ((asked)) && rb_err "RabbitMQ node did not stop within ${RB_STOP_TIMEOUT}s; terminating it"
        # shellcheck disable=SC2086
        rb_kill_pids $launcher $vm || {
            rb_err "RabbitMQ node (pids $launcher $vm) survived SIGKILL"
            return 1
        }
    fi
    rm -f "$dir/rabbit-launcher.pid" "$dir/rabbit.pid"
    RB_RABBIT_STOP_SECONDS=$(rb_elapsed "$start")
}

# ---- Redis -------------------------------------------------------------------

# rb_redis_init DIR PORT
rb_redis_init() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    dir=$(realpath "$dir")
    mkdir -p "$dir/redis" "$dir/log"
    echo "$port" >"$dir/redis.port"
}

# rb_redis_url DIR
rb_redis_url() { printf 'redis://127.0.0.1:%s/0\n' "$(cat "$1/redis.port")"; }

# rb_redis_start DIR: start Redis (no persistence) and wait until it answers
# PING, bounded by RB_START_TIMEOUT.
rb_redis_start() {
    local dir=$1 port pid deadline
    port=$(cat "$dir/redis.port") || return 1
    pid=$(rb_pid_from "$dir/redis.pid")
    if rb_pid_alive "$pid"; then
        rb_err "Redis of $dir is already running"
        return 1
    fi
    if rb_port_listening "$port"; then
        rb_err "Redis port $port is already in use"
        return 1
    fi
    rb_spawn "$dir/redis.pid" "$dir/log/redis.out" \
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$dir/redis" --logfile "$dir/log/redis.log"
    pid=$(rb_pid_from "$dir/redis.pid")
    deadline=$(rb_deadline "$RB_START_TIMEOUT")
    until [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; do
        if ! rb_pid_alive "$pid" || ! rb_before "$deadline"; then
            rb_err "Redis did not start on port $port"
            rb_log_tail "$dir/log/redis.out" "$dir/log/redis.log"
            rb_kill_pids "$pid" || true
            return 1
        fi
        sleep 0.05
    done
}

# rb_redis_stop DIR: stop Redis and wait until it is gone (bounded).
rb_redis_stop() {
    local dir=$1 pid
    pid=$(rb_pid_from "$dir/redis.pid")
    # Redis exits cleanly on TERM; with saving disabled it writes nothing.
    rb_kill_pids "$pid" || {
        rb_err "Redis (pid $pid) did not stop"
        return 1
    }
    rm -f "$dir/redis.pid"
}

# ---- both ----------------------------------------------------------------------

# rb_servers_stop DIR: stop whatever of the broker, its epmd and Redis runs
# from DIR. Safe to call repeatedly and on a half-started set.
rb_servers_stop() {
    local dir=$1 rc=0
    [[ -d $dir ]] || return 0
    if [[ -s $dir/rabbit.env ]]; then
        rb_rabbit_stop "$dir" || rc=1
        rb_epmd_stop "$dir" || rc=1
    fi
    if [[ -e $dir/redis.pid ]]; then
        rb_redis_stop "$dir" || rc=1
    fi
    return $rc
}

# rb_write_control_scripts DIR: small executables in DIR/bin that stop and
# start the servers of DIR from any process:
#   broker-stop, broker-start, redis-stop, redis-start  (block until done)
#   rabbitmqctl ARGS...                                 (against the node)
rb_write_control_scripts() {
    local dir=$1 name body
    mkdir -p "$dir/bin"
    for name in broker-stop broker-start redis-stop redis-start rabbitmqctl; do
        case $name in
        broker-stop) body='rb_rabbit_stop "$dir"' ;;
        broker-start) body='rb_rabbit_start "$dir"' ;;
        redis-stop) body='rb_redis_stop "$dir"' ;;
        redis-start) body='rb_redis_start "$dir"' ;;
        rabbitmqctl) body='rb_rabbitmqctl "$dir" "$@"' ;;
        esac
        {
            echo '#!/usr/bin/env bash'
            echo "# $name for the private servers in this directory (see servers.sh)."
            echo 'set -euo pipefail'
            printf 'dir=%q\n' "$dir"
            printf 'source %q\n' "$RB_SERVERS_LIB"
            echo "$body"
        } >"$dir/bin/$name"
        chmod +x "$dir/bin/$name"
    done
}
