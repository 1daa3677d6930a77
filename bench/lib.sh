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
