package fastpath

// The BPF object and its Go bindings (fastpath_bpfel.go/.o for
// little-endian, fastpath_bpfeb.go/.o for big-endian hosts) are generated
// from bpf/fastpath.c and committed, so that building rtpkit needs no
// clang. Regenerate them with "go generate ./pkg/fastpath/" or "make
// generate" (needs clang, llvm-strip and libbpf-dev: scripts/deps.sh
// installs them); scripts/check-bpf-generated.sh checks that the committed
// files are up to date. FASTPATH_GEN_DIR, when set, writes the output
// there instead of this directory (the check script uses it).
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -output-dir "$FASTPATH_GEN_DIR" -cflags "-O2 -Wall -Werror -Ibpf/include" -target bpfel,bpfeb -type fp_key -type fp_entry -type fp_key6 -type fp_entry6 -type fp_counters fastpath bpf/fastpath.c
