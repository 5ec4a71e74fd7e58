#!/usr/bin/env bash
# Idempotent install of the real peers the test suite talks to (issue #2):
# Debian docker.io, nginx, haproxy, busybox-static, and consul 1.8.7 from a
# bullseye source pinned low so that only packages missing from bookworm come
# from it. Safe to run repeatedly; does nothing when everything is present.
#
# `install.sh --demo` installs only what `make demo` uses (dockerd, nginx,
# busybox, consul): a new machine reaches the walkthrough in minutes.
set -euo pipefail
demo=false
[ "${1:-}" = "--demo" ] && demo=true

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
# issue #14: nginx's stream module (protocol tcp/udp); Debian builds it as a dynamic module.
if ! command -v nginx >/dev/null 2>&1 || { nginx -V 2>&1 | grep -q -- '--with-stream=dynamic' && [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]; }; then
  need+=(libnginx-mod-stream)
fi
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || need+=(busybox-static)
command -v consul >/dev/null 2>&1 || need+=(consul)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
if [ "$demo" = false ]; then
  command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
  # issue #3 item 6: a second, private dockerd on a bridge of its own (test/support/extraDockerd.ts);
  # openssl makes the tcp+TLS endpoints' certificates (test/support/tlsDockerProxy.ts).
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  # issue #5: a real Prometheus scrapes the controller; headless Chromium loads the status page.
  command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # issue #3: etcd for the test bed's kube-apiserver (test/support/k8s.ts).
  command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
  # issue #14: busybox-static's nc has no UDP mode; the UDP echo backend is a static C program (test/support/echo.ts).
  { command -v cc >/dev/null 2>&1 && ls /usr/lib/*/libc.a >/dev/null 2>&1; } || need+=(gcc libc6-dev)
fi

if [ ${#need[@]} -eq 0 ]; then
  echo "install: all test-bed packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install: missing ${need[*]} and not root; install them by hand" >&2
  exit 1
fi

if [[ " ${need[*]} " == *" consul "* ]] && [ ! -f /etc/apt/sources.list.d/bullseye.sources ]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || { echo "install: cannot find the Debian mirror" >&2; exit 1; }
  cat >/etc/apt/sources.list.d/bullseye.sources <<SRC
Types: deb
URIs: $mirror
Suites: bullseye
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cat >/etc/apt/preferences.d/bullseye-pin <<PIN
Package: *
Pin: release n=bullseye
Pin-Priority: 100
PIN
fi

echo "install: apt-get install ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's packages start services on install where systemd exists; the test bed
# runs its own instances on its own ports, so make sure nothing holds port 80.
if command -v service >/dev/null 2>&1; then
  service nginx stop >/dev/null 2>&1 || true
  service haproxy stop >/dev/null 2>&1 || true
  service prometheus stop >/dev/null 2>&1 || true
  service etcd stop >/dev/null 2>&1 || true
fi
# Without systemd the package's postinst may still have started the default nginx: stop only that
# one (its master runs `/usr/sbin/nginx -g ...`), never the test bed's own masters (`nginx -p ... -c ...`).
pkill -f '^nginx: master process /usr/sbin/nginx -g' 2>/dev/null || true
echo "install: done"
