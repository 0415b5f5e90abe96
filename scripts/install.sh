#!/usr/bin/env bash
# Everything `make demo`, `make test` and CI (.ci/run) need, on a Debian machine with Python 3.11+:
#   1. Debian packages for the programs the tests and the demo run (Java, Maven, MariaDB, PostgreSQL,
#      chromium, promtool, ...), with apt-get, as root or through sudo -n; a user who is neither gets the
#      one command to run and nothing else happens;
#   2. kustomize v5.7.1, built once with `go install` into <cache>/go/bin (Go 1.22.7 or newer; without
#      one, Debian's golang-go fetches the Go 1.22.7 toolchain module and that builds it);
#   3. the Python virtual environment with tiltstream and its dev extra from PyPI (again only when
#      pyproject.toml is newer than it);
#   4. Kafka's jars from Maven Central (`tiltstream broker fetch`, cached).
# <cache> is ${XDG_CACHE_HOME:-~/.cache}/tiltstream, the cache the Kafka jars use too.
#
# Usage: scripts/install.sh [--dry-run] [--venv DIR] [--python PYTHON]
#   --dry-run   print what is present and what would be installed; change nothing.
# Until the system step has passed it runs bash built-ins only, so it works on a bare PATH.
set -euo pipefail

here=${BASH_SOURCE[0]%/*}
[[ $here == "${BASH_SOURCE[0]}" ]] && here=.
cd "$here/.."

dry_run=0
venv=.venv
python=python3
while (($#)); do
    case $1 in
        --dry-run) dry_run=1 ;;
        --venv) venv=$2; shift ;;
        --python) python=$2; shift ;;
        *) echo "install.sh: unknown argument $1 (see the header of scripts/install.sh)" >&2; exit 2 ;;
    esac
    shift
done

cache=${XDG_CACHE_HOME:-$HOME/.cache}/tiltstream
gobin=$cache/go/bin
kustomize_module=sigs.k8s.io/kustomize/kustomize/v5
kustomize_version=v5.7.1
go_minimum=1.22.7 # kustomize v5.7.1's go.mod
go_toolchain=go1.22.7

# Every program the tests, the demo and the benchmarks run, and the Debian package that has it.
# tests/test_install_script.py checks this against the programs the code looks up.
system_tools=(
    "make make"
    "git git"
    "ps procps"
    "runuser util-linux"
    "python3 python3-venv"
    "java openjdk-17-jre-headless"
    "mvn maven"
    "mariadbd mariadb-server"
    "mariadb-install-db mariadb-server"
    "mariadb mariadb-client"
    "mariadb-dump mariadb-client"
    "initdb postgresql"
    "pg_ctl postgresql"
    "psql postgresql-client"
    "chromium chromium"
    "promtool prometheus"
)

say() { printf '%s\n' "$*"; }

# Where a program is: PATH, the sbin folders, PostgreSQL's versioned folder (the newest), the tool cache.
find_program() {
    local name=$1 found
    found=$(command -v "$name" 2>/dev/null) && { say "$found"; return 0; }
    for found in /usr/sbin/"$name" /usr/local/sbin/"$name" /sbin/"$name" "$gobin/$name"; do
        [[ -x $found ]] && { say "$found"; return 0; }
    done
    local matches=(/usr/lib/postgresql/*/bin/"$name")
    [[ -x ${matches[-1]} ]] && { say "${matches[-1]}"; return 0; }
    return 1
}

# "go1.26.8" -> 0 when it is at least $go_minimum.
go_new_enough() {
    local have=${1#go} IFS=.
    local -a h=($have) w=($go_minimum)
    local i
    for i in 0 1 2; do
        ((${h[i]:-0} > ${w[i]:-0})) && return 0
        ((${h[i]:-0} < ${w[i]:-0})) && return 1
    done
    return 0
}

find_go() {
    local go
    for go in "$(command -v go 2>/dev/null)" /usr/local/go/bin/go /usr/lib/go/bin/go; do
        [[ -n $go && -x $go ]] && { say "$go"; return 0; }
    done
    return 1
}

kustomize_present() {
    local path
    path=$(find_program kustomize) || return 1
    [[ $("$path" version 2>/dev/null) == "$kustomize_version" ]] && say "$path"
}

system_step() {
    local -a packages=()
    local entry name package path
    for entry in "${system_tools[@]}"; do
        name=${entry%% *} package=${entry#* }
        if path=$(find_program "$name"); then
            say "present  $name  $path"
        else
            say "install  $name  apt-get install $package"
            [[ " ${packages[*]} " == *" $package "* ]] || packages+=("$package")
        fi
    done
    if path=$(find_program python3) && ! "$path" -c 'import ensurepip' 2>/dev/null; then
        say "install  python3 -m venv  apt-get install python3-venv"
        packages+=(python3-venv)
    fi
    if ! kustomize_present >/dev/null && ! find_go >/dev/null; then
        say "install  go  apt-get install golang-go (to build kustomize)"
        packages+=(golang-go)
    fi
    ((${#packages[@]})) || return 0
    ((dry_run)) && return 0
    local -a run=()
    if ((EUID != 0)); then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            run=(sudo)
        else
            say "tiltstream needs Debian packages that only root can install. Run this once, then the same command again:"
            say "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${packages[*]}"
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${run[@]}" apt-get update -q
    "${run[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"
}

# A Go new enough for kustomize: the one found, or the Go toolchain module fetched by an older go.
go_for_kustomize() {
    local go version arch dir
    go=$(find_go)
    version=$("$go" env GOVERSION)
    if go_new_enough "$version"; then
        say "$go"
        return 0
    fi
    arch=$("$go" env GOARCH)
    dir=$(GOPATH=$cache/go GOFLAGS=-modcacherw "$go" mod download -json \
        "golang.org/toolchain@v0.0.1-$go_toolchain.linux-$arch" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/* 2>/dev/null || true
    say "$dir/bin/go"
}

kustomize_step() {
    local path
    if path=$(kustomize_present); then
        say "present  kustomize $kustomize_version  $path"
        return 0
    fi
    say "install  kustomize  go install $kustomize_module@$kustomize_version into $gobin"
    ((dry_run)) && return 0
    local go
    go=$(go_for_kustomize)
    mkdir -p "$gobin"
    GOPATH=$cache/go GOBIN=$gobin GOCACHE=$cache/go/build GOFLAGS=-modcacherw GOTOOLCHAIN=local \
        "$go" install "$kustomize_module@$kustomize_version"
    say "built    kustomize $("$gobin/kustomize" version)  $gobin/kustomize"
}

python_step() {
    if ! "$python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' 2>/dev/null; then
        say "missing  python 3.11 or newer as $python (tiltstream needs it)"
        ((dry_run)) && return 0
        exit 1
    fi
    if [[ -x $venv/bin/tiltstream && $venv/bin/tiltstream -nt pyproject.toml ]]; then
        say "present  python venv  $venv (newer than pyproject.toml)"
        return 0
    fi
    say "install  python venv  $python -m venv $venv; uv pip install -e '.[dev]' from PyPI"
    ((dry_run)) && return 0
    "$python" -m venv "$venv"
    # uv (from PyPI) resolves and fetches in parallel: the 4 GB of torch and its CUDA libraries install in
    # about 30 s where pip takes about 3 minutes. It installs into the same venv, as pip would.
    "$venv/bin/python" -m pip install -q --disable-pip-version-check 'uv>=0.5'
    "$venv/bin/uv" pip install -q --python "$venv/bin/python" -e '.[dev]'
    touch "$venv/bin/tiltstream"
}

broker_step() {
    say "install  kafka jars  tiltstream broker fetch (Maven Central, cached in $cache/kafka)"
    ((dry_run)) && return 0
    "$venv/bin/tiltstream" broker fetch
}

system_step
kustomize_step
python_step
broker_step
