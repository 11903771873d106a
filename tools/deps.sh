#!/bin/sh
# deps.sh build|bench|test - check what wxbench needs and install what is
# missing: Debian/Ubuntu through apt-get (as root, or with sudo), macOS
# through Homebrew plus a .venv for matplotlib. Where it cannot install, it
# stops and prints the exact command to run.
set -u
what=${1:-bench}
here=$(cd "$(dirname "$0")/.." && pwd)
missing=""        # human names
apt_pkgs=""       # Debian package names
brew_pkgs=""      # Homebrew formulae
need_venv=0       # matplotlib (and pytest) in .venv on macOS

have() { command -v "$1" >/dev/null 2>&1; }
add() { missing="$missing $1"; apt_pkgs="$apt_pkgs $2"; [ -n "$3" ] && brew_pkgs="$brew_pkgs $3"; return 0; }

# Everything needs the compilers, make, pkg-config and Google Benchmark.
have cc || have gcc || have clang || add "C compiler" gcc ""
have c++ || have g++ || have clang++ || add "C++ compiler" g++ ""
have pkg-config || have pkgconf || add pkg-config pkg-config pkgconf
if ! pkg-config --exists benchmark 2>/dev/null; then
    add "Google Benchmark (benchmark.pc)" libbenchmark-dev google-benchmark
fi
if [ "$what" = bench ] || [ "$what" = test ]; then

    if ! "$here/tools/find_python.sh" $( [ "$what" = test ] && echo --test ) >/dev/null 2>&1; then
        if [ "$what" = test ]; then
            add "Python 3 with matplotlib and pytest" "python3 python3-matplotlib python3-pytest" ""
        else
            add "Python 3 with matplotlib" "python3 python3-matplotlib" ""
        fi
        need_venv=1
    fi
    have gnuplot || add gnuplot gnuplot-nox gnuplot
    # Google Benchmark's own compare.py (and scipy for its U test) reads gb.json in a test (Debian ships it)
    if [ "$what" = test ] && [ "$(uname -s)" = Linux ] && [ ! -f /usr/share/benchmark/compare.py ]; then
        add "Google Benchmark's tools (compare.py, with scipy)" "libbenchmark-tools python3-scipy" ""
    fi
fi

[ -z "$missing" ] && exit 0
echo "wxbench: missing:$missing" >&2

os=$(uname -s)
if [ "$os" = Darwin ]; then
    if ! have brew; then
        echo "wxbench: install Homebrew (https://brew.sh), then run: make deps" >&2
        exit 1
    fi
    if [ -n "$brew_pkgs" ]; then
        echo "wxbench: brew install$brew_pkgs" >&2
        brew install $brew_pkgs || { echo "wxbench: run: brew install$brew_pkgs" >&2; exit 1; }
    fi
    if [ $need_venv = 1 ]; then
        py=$(command -v python3 || true)
        [ -z "$py" ] && { echo "wxbench: run: brew install python" >&2; exit 1; }
        echo "wxbench: creating .venv with matplotlib and pytest" >&2
        "$py" -m venv "$here/.venv" && "$here/.venv/bin/pip" install --quiet matplotlib pytest ||
            { echo "wxbench: run: python3 -m venv .venv && .venv/bin/pip install matplotlib pytest" >&2; exit 1; }
    fi
    exit 0
fi

if have apt-get; then
    cmd="apt-get install -y --no-install-recommends$apt_pkgs"
    if [ "$(id -u)" = 0 ]; then
        sudo=""
    elif have sudo && sudo -n true 2>/dev/null; then
        sudo="sudo"
    else
        echo "wxbench: run as root: apt-get update && $cmd" >&2
        exit 1
    fi
    echo "wxbench: installing:$apt_pkgs" >&2
    $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo $cmd >&2 ||
        { echo "wxbench: installation failed; run as root: apt-get update && $cmd" >&2; exit 1; }
    exit 0
fi

echo "wxbench: no apt-get or Homebrew here; install:$missing (see README)" >&2
exit 1
