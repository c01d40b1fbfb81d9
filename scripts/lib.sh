# Shared helpers for scripts/*: sourced, not run.

# Install Debian packages that are missing (as root or through sudo). No-op elsewhere.
ensure_packages() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        echo "missing packages ${missing[*]} and no apt-get: install them by hand" >&2
        return 1
    fi
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    # Debian starts the packaged redis-server service on 6379 right after installing it (where
    # systemd runs). We installed it only to get the binary: stop that service again.
    if [[ " ${missing[*]} " == *" redis-server "* ]] && command -v systemctl >/dev/null \
        && systemctl is-active --quiet redis-server 2>/dev/null; then
        $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
    fi
}

# True when something already listens on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The module, built in release mode.
MODULE_SO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/release/libredis_hacks.so"

build_module() {
    cargo build --release --lib
}

# A loopback port nobody listens on (bash's /dev/tcp: a refused connect means free).
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 30000))
        if ! port_in_use "$p"; then
            echo "$p"
            return 0
        fi
    done
    echo 16379
}
