package fwd

import (
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkForward measures packets through one running loop on loopback:
// parties A and B each send windows of 32 RTP packets (172 bytes, G.711
// sized) through the proxy sockets and read them back on the other side.
// One op is one forwarded packet; the time includes the senders' and
// receivers' syscalls.
func BenchmarkForward(b *testing.B) {
	// No flood cap: the benchmark sends far above 30 000 packets/s per
	// stream.
	e := newTestEngine(b, Config{Workers: 1, MaxStreamPPS: -1})
	c := newCall(b)
	c.set(b, e, "bench", 1, 2, Stream{}, Stream{})
	const window = 32
	pa := rtpPacket(1, 0xA, make([]byte, 160))
	pb := rtpPacket(1, 0xB, make([]byte, 160))
	buf := make([]byte, 2048)
	// Warm up: latch both sides.
	send(b, c.A, c.paA, pa)
	expect(b, c.B, pa, c.pbA)
	send(b, c.B, c.pbA, pb)
	expect(b, c.A, pb, c.paA)

	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(window, (b.N-done+1)/2)
		deadline := time.Now().Add(5 * time.Second) // a lost packet fails, not hangs
		c.A.SetReadDeadline(deadline)
		c.B.SetReadDeadline(deadline)
		for range k {
			c.A.WriteToUDPAddrPort(pa, c.paA)
			c.B.WriteToUDPAddrPort(pb, c.pbA)
		}
		for range k {
			if _, _, err := c.B.ReadFromUDPAddrPort(buf); err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.A.ReadFromUDPAddrPort(buf); err != nil {
				b.Fatal(err)
			}
		}
		done += 2 * k
	}
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	b.ReportMetric(secs*1e9/float64(b.N), "ns/packet")
	b.ReportMetric(float64(b.N)/secs, "packets/s")
}

// threadCPU returns the CPU time a thread of this process has used, from
// /proc/self/task/<tid>/schedstat.
func threadCPU(b *testing.B, tid int32) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/schedstat", tid))
	if err != nil {
		b.Fatal(err)
	}
	var ns int64
	if _, err := fmt.Sscan(string(raw), &ns); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ns)
}

// processCPU returns the user and system CPU time of the whole process.
func processCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkForwardPaced sends a steady 20 000 packets/s (10 000 each way,
// in bursts every millisecond) through one loop and reports the loop
// thread's CPU time per forwarded packet, and the whole process's (which
// includes the senders and receivers): the figures D2b compares, where the
// cost of the wait path shows (at saturation it does not).
func BenchmarkForwardPaced(b *testing.B) {
	e := newTestEngine(b, Config{Workers: 1, MaxStreamPPS: -1})
	c := newCall(b)
	c.set(b, e, "bench", 1, 2, Stream{}, Stream{})
	l := e.loops[0]
	var tid int32
	for tid = l.tid.Load(); tid == 0; tid = l.tid.Load() {
		time.Sleep(time.Millisecond)
	}
	pa := rtpPacket(1, 0xA, make([]byte, 160))
	pb := rtpPacket(1, 0xB, make([]byte, 160))
	var wg sync.WaitGroup
	read := func(conn *net.UDPConn, n int) {
		defer wg.Done()
		buf := make([]byte, 2048)
		conn.SetReadDeadline(time.Now().Add(time.Duration(n)*time.Millisecond/10 + 5*time.Second))
		for range n {
			if _, _, err := conn.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}
	const perMs = 10 // each way
	n := (b.N + 2*perMs - 1) / (2 * perMs)
	wg.Add(2)
	go read(c.A, n*perMs)
	go read(c.B, n*perMs)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, proc0 := threadCPU(b, tid), processCPU(b)
	start := time.Now()
	for i := range n {
		for range perMs {
			c.A.WriteToUDPAddrPort(pa, c.paA)
			c.B.WriteToUDPAddrPort(pb, c.pbA)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * time.Millisecond)))
	}
	wg.Wait()
	cpu, proc := threadCPU(b, tid)-cpu0, processCPU(b)-proc0
	b.StopTimer()
	got := stats(b, e, 1).Packets + stats(b, e, 2).Packets
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(got), "loop-cpu-ns/packet")
	b.ReportMetric(float64(proc.Nanoseconds())/float64(got), "process-cpu-ns/packet")
	b.ReportMetric(float64(got)/time.Since(start).Seconds(), "packets/s")
}
