#!/bin/sh
# provision-lab.sh - the lab's Vagrant provisioning with Samsa in place of Kafka's
# tarball: build dependencies, build, `make install` into PREFIX (Kafka's layout),
# format storage with a fresh cluster id, run the node as the transient systemd
# unit "kafka" (as the lab does with systemd-run) and put PREFIX/bin on PATH.
#
# With SAMSA_INSTALL=deb it installs the Debian package `samsa` instead
# (docs/packaging.md): `make deb`, `apt-get install` of the .deb, and the unit
# samsa.service enabled and started (it formats /var/lib/samsa/data on its first
# start); the tools are in /usr/bin, so PATH needs nothing.
#
# Safe to run again (`vagrant provision`): formatted storage is kept and a running
# unit is left alone. Knobs, for tests and other machines (defaults in brackets):
#   SAMSA_INSTALL    tarball = make install into PREFIX, deb = the package [tarball]
#   SAMSA_DEB        with deb: this .deb instead of building one []
#   SAMSA_SRC        source tree [the directory above this script]
#   PREFIX           install prefix [/opt/kafka]
#   SAMSA_SKIP_DEPS  1 = do not run scripts/install-deps.sh (apt-get) [0]
#   SAMSA_MAKE_ARGS  extra make arguments [BUILD=/var/tmp/samsa-build, so that
#                    objects built on the host in a synced build/ are never reused]
#   SAMSA_CONFIG     server.properties to format and start [PREFIX/config/kraft/server.properties]
#   SAMSA_START      systemd = start the unit, none = do not start [systemd]
#   PROFILE_D        where kafka.sh goes [/etc/profile.d]
set -eu

SAMSA_SRC=${SAMSA_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
PREFIX=${PREFIX:-/opt/kafka}
SAMSA_SKIP_DEPS=${SAMSA_SKIP_DEPS:-0}
SAMSA_MAKE_ARGS=${SAMSA_MAKE_ARGS:-BUILD=/var/tmp/samsa-build}
SAMSA_CONFIG=${SAMSA_CONFIG:-$PREFIX/config/kraft/server.properties}
SAMSA_START=${SAMSA_START:-systemd}
SAMSA_INSTALL=${SAMSA_INSTALL:-tarball}
SAMSA_DEB=${SAMSA_DEB:-}
PROFILE_D=${PROFILE_D:-/etc/profile.d}
# The installed scripts must find PREFIX/libexec, not a build directory.
unset SAMSA_BUILD

if [ "$SAMSA_SKIP_DEPS" != 1 ]; then
    sh "$SAMSA_SRC/scripts/install-deps.sh"
fi

jobs=$(nproc 2>/dev/null || echo 2)

if [ "$SAMSA_INSTALL" = deb ]; then
    if [ -z "$SAMSA_DEB" ]; then
        # shellcheck disable=SC2086
        make -C "$SAMSA_SRC" -j"$jobs" $SAMSA_MAKE_ARGS all
        # shellcheck disable=SC2086
        SAMSA_DEB=$(make -s --no-print-directory -C "$SAMSA_SRC" $SAMSA_MAKE_ARGS deb | tail -n 1)
        case "$SAMSA_DEB" in /*) ;; *) SAMSA_DEB="$SAMSA_SRC/$SAMSA_DEB" ;; esac
    fi
    # apt-get resolves the Depends; a path with a slash is a file, not a name.
    case "$SAMSA_DEB" in /*) ;; *) SAMSA_DEB="$(pwd)/$SAMSA_DEB" ;; esac
    DEBIAN_FRONTEND=noninteractive apt-get install -yq "$SAMSA_DEB"
    case "$SAMSA_START" in
    systemd) systemctl enable --now samsa.service ;;
    none) ;;
    *)
        echo "provision-lab.sh: SAMSA_START must be systemd or none" >&2
        exit 2
        ;;
    esac
    exit 0
elif [ "$SAMSA_INSTALL" != tarball ]; then
    echo "provision-lab.sh: SAMSA_INSTALL must be tarball or deb" >&2
    exit 2
fi

# shellcheck disable=SC2086  # SAMSA_MAKE_ARGS is a list of words on purpose
make -C "$SAMSA_SRC" -j"$jobs" $SAMSA_MAKE_ARGS install PREFIX="$PREFIX"

# Like the lab: format with a new cluster id (kept if already formatted).
"$PREFIX/bin/kafka-storage.sh" format \
    -t "$("$PREFIX/bin/kafka-storage.sh" random-uuid)" \
    -c "$SAMSA_CONFIG" --ignore-formatted

case "$SAMSA_START" in
systemd)
    if systemctl is-active --quiet kafka; then
        echo "kafka is already running"
    else
        systemctl reset-failed kafka 2>/dev/null || true
        systemd-run -u kafka -E KAFKA_HEAP_OPTS="-Xmx256M -Xms128M" \
            "$PREFIX/bin/kafka-server-start.sh" "$SAMSA_CONFIG"
    fi
    ;;
none) ;;
*)
    echo "provision-lab.sh: SAMSA_START must be systemd or none" >&2
    exit 2
    ;;
esac

mkdir -p "$PROFILE_D"
echo "PATH=\"\$PATH:$PREFIX/bin\"" > "$PROFILE_D/kafka.sh"
