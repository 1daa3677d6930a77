package fastpath

// withCap sets the entry's rate cap; floodDrops reads the kernel's count.
func withCap(e Entry, pps uint32) Entry { e.MaxPPS = pps; return e }
func floodDrops(c Counters) uint64      { return c.FloodDrops }
