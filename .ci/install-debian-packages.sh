#!/usr/bin/env bash
# Install the external programs the test suite and the benchmarks start: authoritative
# servers (nsd, knot) and dnsmasq as upstreams, dig, dnsperf, and prometheus/promtool.
#
# Idempotent and quick when everything is present. The packages' own services are never
# left running: the tests start their own instances on high ports.
set -euo pipefail

packages=(nsd knot dnsmasq-base dnsperf prometheus bind9-dnsutils)
binaries=(nsd knotd dnsmasq dnsperf prometheus promtool dig)
services=(nsd knot prometheus dnsmasq)

# Debian puts the daemons in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing=()
for binary in "${binaries[@]}"; do
    command -v "$binary" >/dev/null 2>&1 || missing+=("$binary")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-debian-packages: all tools present, nothing to do"
    exit 0
fi
echo "install-debian-packages: missing ${missing[*]}; installing ${packages[*]}"

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
else
    as_root=(sudo)
fi

# policy-rc.d answering 101 ("action forbidden") stops invoke-rc.d/deb-systemd-invoke from
# starting services during the install. Leave an existing one alone (container images often
# ship exactly this); remove ours afterwards, whatever happens.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 0755 "$policy"
    trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi

"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${packages[@]}"

# Belt and braces for systems where a service got started anyway (a pre-existing policy-rc.d
# that allows it, or the service was already there): stop it and keep it from coming back at
# boot, so that it cannot hold ports or answer in place of a test server.
for service in "${services[@]}"; do
    if [ -d /run/systemd/system ] && systemctl cat "$service.service" >/dev/null 2>&1; then
        "${as_root[@]}" systemctl disable --now "$service.service" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$service" ]; then
        "${as_root[@]}" "/etc/init.d/$service" stop >/dev/null 2>&1 || true
    fi
done

for binary in "${binaries[@]}"; do
    if ! command -v "$binary" >/dev/null 2>&1; then
        echo "install-debian-packages: $binary still missing after install" >&2
        exit 1
    fi
done
echo "install-debian-packages: done"
