# Shell helpers the bench scripts share (sourced, not run).

# free_udp_port prints a UDP port on 127.0.0.1 nobody listens on.
free_udp_port() {
	local p
	for p in $(shuf -i 12000-19999 -n 100); do
		if [ -z "$(ss -Hulnp "sport = :$p" 2>/dev/null)" ]; then
			echo "$p"
			return
		fi
	done
	echo "no free UDP port" >&2
	return 1
}

# start_rtpengine NAME PORT-MIN PORT-MAX [EXTRA…] starts rtpengine as its
# best operators run it (logging to stderr into $TMP/NAME.log, no kernel
# table, --delete-delay=0) on a free ng port of 127.0.0.1, records it in
# the caller's NG and PID maps and PIDS list, and waits for its ng socket.
start_rtpengine() {
	local name=$1 ng
	ng=127.0.0.1:$(free_udp_port)
	rtpengine --config-file=none --table=-1 --foreground --interface=127.0.0.1 --listen-ng="$ng" \
		--delete-delay=0 --log-stderr --port-min="$2" --port-max="$3" "${@:4}" >"$TMP/$name.log" 2>&1 &
	PID[$name]=$!
	NG[$name]=$ng
	PIDS+=("$!")
	for _ in $(seq 100); do
		[ -n "$(ss -Hulnp "sport = :${ng##*:}" 2>/dev/null)" ] && break
		kill -0 "${PID[$name]}" 2>/dev/null || { cat "$TMP/$name.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "$name ng $ng pid ${PID[$name]}" >&2
}
