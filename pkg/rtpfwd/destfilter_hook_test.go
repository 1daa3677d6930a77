package rtpfwd

// setAllowLoopback sets --allow-loopback-media; refusedCount reads the
// refusals counted.
func setAllowLoopback(r *reconciler, allow bool) { r.allowLoopback = allow }
func refusedCount(r *reconciler) uint64          { return r.refused }
