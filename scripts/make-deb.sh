#!/bin/sh
# make-deb.sh BUILD_DIR [OUT_DIR] - the Debian package `samsa` from an
# already built tree (`make deb` builds first), with dpkg-deb alone: no
# network, no debhelper. The .deb lands in OUT_DIR (default BUILD_DIR) and
# its path is printed.
#
# Layout (docs/packaging.md):
#   /usr/lib/samsa/libexec/samsa-{broker,tools}  the programs
#   /usr/lib/samsa/bin/kafka-*.sh                 Kafka's scripts, as in the tarball
#   /usr/lib/samsa/logs -> /var/log/samsa         where -daemon's LOG_DIR defaults to
#   /usr/bin/kafka-*.sh                           wrappers that exec the above
#   /usr/share/man/man1/kafka-*.sh.1.gz           their manual pages (make-manpages.sh)
#   /etc/samsa/server.properties                  conffile (log.dirs=/var/lib/samsa/data)
#   /lib/systemd/system/samsa.service             the unit (Type=notify, User=samsa)
#   /var/lib/samsa, /var/log/samsa                data and logs, owned by samsa (postinst)
set -eu
build=${1:?usage: make-deb.sh BUILD_DIR [OUT_DIR]}
out=${2:-$build}
root=$(cd "$(dirname "$0")/.." && pwd)
for p in samsa-broker samsa-tools; do
    [ -x "$build/$p" ] || { echo "make-deb.sh: $build/$p not built" >&2; exit 1; }
done
command -v dpkg-deb >/dev/null || { echo "make-deb.sh: dpkg-deb not found" >&2; exit 1; }

if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    version="3.6.1+samsa.$(git -C "$root" log -1 --format=%cd --date=format:%Y%m%d).$(git -C "$root" rev-parse --short=8 HEAD)"
else
    version="3.6.1+samsa"
fi
arch=$(dpkg --print-architecture)
# .invalid (RFC 2606): there is no list to write to; set your own when publishing.
maintainer=${SAMSA_DEB_MAINTAINER:-Samsa maintainers <samsa@samsa.invalid>}
stage=$(mktemp -d "${TMPDIR:-/tmp}/samsa-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg="$stage/samsa"

install -d "$pkg/DEBIAN" "$pkg/usr/lib/samsa/libexec" "$pkg/usr/lib/samsa/bin" "$pkg/usr/bin" \
    "$pkg/etc/samsa" "$pkg/lib/systemd/system" "$pkg/usr/share/doc/samsa" "$pkg/var/lib/samsa" "$pkg/var/log/samsa"
install -m 755 "$build/samsa-broker" "$build/samsa-tools" "$pkg/usr/lib/samsa/libexec/"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$pkg/usr/lib/samsa/libexec/samsa-broker" "$pkg/usr/lib/samsa/libexec/samsa-tools" 2>/dev/null || true
for s in "$root"/bin/kafka-*.sh; do
    name=$(basename "$s")
    install -m 755 "$s" "$pkg/usr/lib/samsa/bin/$name"
    printf '#!/bin/sh\nexec /usr/lib/samsa/bin/%s "$@"\n' "$name" > "$pkg/usr/bin/$name"
    chmod 755 "$pkg/usr/bin/$name"
done
# A manual page for each (scripts/make-manpages.sh).
"$root/scripts/make-manpages.sh" "$pkg/usr/share/man/man1"
chmod 644 "$pkg/usr/share/man/man1/"*

# kafka-server-start.sh -daemon's default LOG_DIR is the logs dir beside bin/.
ln -s /var/log/samsa "$pkg/usr/lib/samsa/logs"

# The shipped config, with the data where a service keeps it.
sed -e 's|^log.dirs=.*|log.dirs=/var/lib/samsa/data|' "$root/config/kraft/server.properties" \
    > "$pkg/etc/samsa/server.properties"
cat >> "$pkg/etc/samsa/server.properties" <<'EOF'

# Prometheus metrics (docs/metrics.md): uncomment to serve /metrics.
#metrics.listener=http://127.0.0.1:9404
EOF
chmod 644 "$pkg/etc/samsa/server.properties"

cat > "$pkg/lib/systemd/system/samsa.service" <<'EOF'
[Unit]
Description=Samsa (Apache Kafka 3.6.1 in C), a KRaft node
Documentation=file:///usr/share/doc/samsa/README.md
After=network-online.target
Wants=network-online.target

[Service]
# The broker sends READY=1 to $NOTIFY_SOCKET once its listeners are open and
# STOPPING=1 when a SIGTERM starts its shutdown (src/util/sd_notify.c).
Type=notify
User=samsa
Group=samsa
# Kafka's log files (server.log, controller.log, ... rolled hourly) go here;
# stdout, the same lines as server.log, goes to the journal.
Environment=LOG_DIR=/var/log/samsa
# The first start formats the data dir with a new cluster id, as
# kafka-storage.sh format would (a cluster: format by hand with its id).
ExecStartPre=/bin/sh -c '[ -f /var/lib/samsa/data/meta.properties ] || /usr/lib/samsa/bin/kafka-storage.sh format -t "$(/usr/lib/samsa/bin/kafka-storage.sh random-uuid)" -c /etc/samsa/server.properties'
ExecStart=/usr/lib/samsa/bin/kafka-server-start.sh /etc/samsa/server.properties
# Log recovery after a crash may take a while before READY=1.
TimeoutStartSec=900
# Stop = SIGTERM to the broker alone: Kafka's graceful stop (controlled
# shutdown in a cluster: leaderships move away first), then the logs close.
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=120
Restart=on-failure
LimitNOFILE=100000
WorkingDirectory=/var/lib/samsa
# Sandboxing that leaves any log.dirs outside /usr, /boot, /etc working.
UMask=0027
NoNewPrivileges=yes
ProtectSystem=full
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes

[Install]
WantedBy=multi-user.target
EOF
chmod 644 "$pkg/lib/systemd/system/samsa.service"

cp "$root/README.md" "$pkg/usr/share/doc/samsa/README.md"
[ -f "$root/docs/metrics.md" ] && cp "$root/docs/metrics.md" "$pkg/usr/share/doc/samsa/metrics.md"
cat > "$pkg/usr/share/doc/samsa/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: samsa
Comment: Apache Kafka 3.6.1 rewritten in C.

Files: *
Copyright: 2026 Samsa contributors
 Apache Kafka, whose protocol, formats, tools and messages Samsa follows:
 2012-2023 The Apache Software Foundation
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
# A native package (no Debian revision): its changelog is changelog.gz.
printf 'samsa (%s) unstable; urgency=medium\n\n  * Built from the source tree.\n\n -- %s  %s\n' \
    "$version" "$maintainer" "$(date -R)" | gzip -9n > "$pkg/usr/share/doc/samsa/changelog.gz"
chmod 644 "$pkg/usr/share/doc/samsa/"*

# What lintian reports that is meant so (docs/packaging.md).
install -d "$pkg/usr/share/lintian/overrides"
cat > "$pkg/usr/share/lintian/overrides/samsa" <<'EOF'
# Kafka's command names end in .sh: users, the lab and scripts type them so.
samsa: script-with-language-extension [usr/bin/kafka-*.sh]
EOF
chmod 644 "$pkg/usr/share/lintian/overrides/samsa"

# Depends: the packages that ship the libraries the programs link, and those the broker loads
# when it first needs them (dlopen: libsnappy, src/protocol/compress.c; libssl and libcrypto on
# x86-64, src/security/openssl_lazy.c).
dlopened=$(ldconfig -p | awk '$1 == "libsnappy.so.1" || $1 == "libssl.so.3" || $1 == "libcrypto.so.3" {print $NF}' | sort -u)
deps=$({ ldd "$build/samsa-broker" "$build/samsa-tools" | awk '/=>/ {print $3}'; echo "$dlopened"; } | grep . | sort -u | while read -r lib; do
    dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true
done | cut -d: -f1 | sort -u | grep -v '^$' | paste -sd, - | sed 's/,/, /g')
size=$(du -sk "$pkg" | cut -f1)

cat > "$pkg/DEBIAN/control" <<EOF
Package: samsa
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: adduser, ${deps:-libc6}
Section: net
Priority: optional
Homepage: https://kafka.apache.org/
Description: Apache Kafka 3.6.1 rewritten in C
 Samsa is a KRaft node (broker and controller in one process) speaking
 Kafka's protocol and keeping Kafka's on-disk layout, with Kafka's command
 line tools (kafka-topics.sh, kafka-console-producer.sh, ...) and a systemd
 unit, samsa.service.
EOF
echo /etc/samsa/server.properties > "$pkg/DEBIAN/conffiles"

cat > "$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd samsa >/dev/null; then
        adduser --system --group --home /var/lib/samsa --no-create-home --quiet samsa
    fi
    chown samsa:samsa /var/lib/samsa /var/log/samsa
    chmod 750 /var/lib/samsa /var/log/samsa
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || true
    fi
fi
exit 0
EOF
cat > "$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    deb-systemd-invoke stop samsa.service >/dev/null 2>&1 || true
fi
exit 0
EOF
cat > "$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
# remove keeps the data, the logs and the config; purge removes them all.
# The samsa system user stays: a uid reused by another account could
# otherwise own files left elsewhere (adduser's advice for system users).
if [ "$1" = purge ]; then
    rm -rf /var/lib/samsa /var/log/samsa
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
EOF
chmod 755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"
(cd "$pkg" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$pkg/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/samsa_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
