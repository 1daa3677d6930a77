/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* Architecture-neutral stand-in for <asm/types.h>: clang -target bpf does not
 * search the host's multiarch include directory, and the BPF program needs
 * nothing architecture-specific from it. */
#include <asm-generic/types.h>
