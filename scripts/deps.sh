#!/usr/bin/env bash
# Installs the system packages rtpkit's tests (and make generate) use, when they
# are missing.
# As root on Debian/Ubuntu it uses apt-get; otherwise it says what is missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v nats-server >/dev/null || need+=(nats-server)
command -v prlimit >/dev/null || need+=(util-linux)
command -v rtpengine-ng-client >/dev/null || need+=(rtpengine-utils)
# TestWebRTCChromium calls through a node from a real browser (headless).
command -v chromium >/dev/null || need+=(chromium)
# TestSIPpDTMFThroughKamailio: SIPp (and its RFC 2833 captures) through
# Kamailio's rtpengine module.
command -v sipp >/dev/null || need+=(sip-tester)
command -v kamailio >/dev/null || need+=(kamailio)
# TestSRTPInteropRtpengine runs a real rtpengine beside rtpkit.
command -v rtpengine >/dev/null || need+=(rtpengine-daemon)
command -v ip >/dev/null || need+=(iproute2)
command -v ss >/dev/null || need+=(iproute2)
# TestBadAdoptClosedOnce traces portd's closes.
command -v strace >/dev/null || need+=(strace)
# pkg/fastpath's BPF program: make generate and scripts/check-bpf-generated.sh.
command -v clang >/dev/null || need+=(clang)
command -v llvm-strip >/dev/null || need+=(llvm)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
[ -e /usr/include/linux/bpf.h ] || need+=(linux-libc-dev)
# Transcoding (pkg/codec, cgo): libopus (and libopusfile, which the Go
# binding links), spandsp, speexdsp, bcg729 (G.729); found through
# pkg-config; libgsm (GSM 06.10) by its header.
command -v pkg-config >/dev/null || need+=(pkg-config)
for lib in opus:libopus-dev opusfile:libopusfile-dev spandsp:libspandsp-dev speexdsp:libspeexdsp-dev libbcg729:libbcg729-dev; do
  pkg-config --exists "${lib%%:*}" 2>/dev/null || need+=("${lib#*:}")
done
[ -e /usr/include/gsm/gsm.h ] || need+=(libgsm1-dev)

# The npm rtpengine-client, a real ng client the tests drive.
npm_client() {
  local dir=pkg/ngctl/testdata/npm-client
  [ -d "$dir/node_modules/rtpengine-client" ] && return 0
  if command -v npm >/dev/null; then
    (cd "$dir" && npm ci --no-audit --no-fund >/dev/null 2>&1) || echo "deps: npm ci in $dir failed" >&2
  else
    echo "deps: npm not found; the npm client test will fail under make test" >&2
  fi
}
npm_client
[ ${#need[@]} -eq 0 ] && exit 0
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
    apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
  }
  # Debian's package may start a system redis; the tests start their own.
  # So may rtpengine-daemon's: the tests start their own rtpengine, and a
  # system one would hold ports and the kernel table. Stop and disable it:
  # the service under systemd; without, the init script's daemon, if its
  # postinst started one (the script stops only the pid in its pidfile).
  # Kamailio's package may start a system proxy on 5060: the tests run
  # their own.
  if [[ " ${need[*]} " == *" kamailio "* ]]; then
    if [ -d /run/systemd/system ]; then
      systemctl disable --now kamailio >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/kamailio ]; then
      /etc/init.d/kamailio stop >/dev/null 2>&1 || true
      update-rc.d kamailio disable >/dev/null 2>&1 || true
    fi
  fi
  if [[ " ${need[*]} " == *" rtpengine-daemon "* ]]; then
    if [ -d /run/systemd/system ]; then
      systemctl disable --now rtpengine-daemon >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/rtpengine-daemon ]; then
      [ -e /run/rtpengine/rtpengine-daemon.pid ] && { /etc/init.d/rtpengine-daemon stop >/dev/null 2>&1 || true; }
      update-rc.d rtpengine-daemon disable >/dev/null 2>&1 || true
    fi
  fi
else
  echo "deps: missing ${need[*]} (install them, or run make test as root on Debian)" >&2
  exit 1
fi
