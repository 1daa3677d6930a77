package redissync

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtpkit/rtpkit/pkg/metrics"
	"github.com/rtpkit/rtpkit/pkg/rediscalls"
)

// Descriptions of redis-sync's metrics (docs/metrics.md), read at scrape
// time from the syncer's counters and tables.
var (
	descEnabled     = metrics.NewDesc("rtpkit_redis_enabled", "1 if redis-sync persists calls (--redis given), 0 if it idles.")
	descWrites      = metrics.NewDesc("rtpkit_redis_writes_total", "Call writes, deletes and moves applied to Redis.")
	descWriteErrors = metrics.NewDesc("rtpkit_redis_write_errors_total", "Redis write batches that failed (their calls are written again).")
	descRestores    = metrics.NewDesc("rtpkit_redis_restores_total", "Calls restored from Redis into node state (own after a restart, or foreign).")
	descRemovals    = metrics.NewDesc("rtpkit_redis_removals_total", "Foreign calls removed from node state because they left Redis.")
	descResyncs     = metrics.NewDesc("rtpkit_redis_resyncs_total", "Full reads of a followed partition (after every (re)subscription).")
	descRejected    = metrics.NewDesc("rtpkit_redis_rejected_total", "Call records of Redis not restored: over a cap, not on this node's addresses and ports, or refused by portd.")
	descAuditFixes  = metrics.NewDesc("rtpkit_redis_audit_fixes_total", "Foreign calls the periodic audit found out of line with their followed partition (a keyspace notification lost) and read again.")
	descDropped     = metrics.NewDesc("rtpkit_redis_dropped_total", "Call writes dropped because the write queue was full.")
	descQueued      = metrics.NewDesc("rtpkit_redis_queue_length", "Calls whose write waits in the queue.")
	descQueueCap    = metrics.NewDesc("rtpkit_redis_queue_capacity", "Most calls the write queue holds (--redis-queue).")
	descFollowed    = metrics.NewDesc("rtpkit_redis_followed_partitions", "Redis partitions (databases) of the group this node follows.")
	descCalls       = metrics.NewDesc("rtpkit_redis_calls", "Calls of node state whose Redis copy is in the partition (own partition: this node's calls; followed ones: foreign calls).", "partition")
)

var redisDescs = []*prometheus.Desc{descEnabled, descWrites, descWriteErrors, descRestores, descRemovals, descResyncs, descRejected, descAuditFixes,
	descDropped, descQueued, descQueueCap, descFollowed, descCalls}

// idleCollector is redis-sync's collector without --redis.
func idleCollector() prometheus.Collector {
	return metrics.OnScrape(func(ch chan<- prometheus.Metric) {
		metrics.Gauge(ch, descEnabled, 0)
	}, redisDescs...)
}

// collector reads the syncer's counters and calls at scrape time.
func (s *syncer) collector(queueCap int) prometheus.Collector {
	return metrics.OnScrape(func(ch chan<- prometheus.Metric) {
		c := s.counters()
		metrics.Gauge(ch, descEnabled, 1)
		metrics.Counter(ch, descWrites, float64(c.Writes))
		metrics.Counter(ch, descWriteErrors, float64(c.WriteErrors))
		metrics.Counter(ch, descRestores, float64(c.Restores))
		metrics.Counter(ch, descRemovals, float64(c.Removals))
		metrics.Counter(ch, descResyncs, float64(c.Resyncs))
		metrics.Counter(ch, descRejected, float64(c.Rejected))
		metrics.Counter(ch, descAuditFixes, float64(c.AuditFixes))
		metrics.Counter(ch, descDropped, float64(c.Dropped))
		metrics.Gauge(ch, descQueued, float64(c.Queued))
		metrics.Gauge(ch, descQueueCap, float64(queueCap))
		followed, byPartition := s.partitionCounts()
		metrics.Gauge(ch, descFollowed, float64(followed))
		for _, p := range byPartition {
			metrics.Gauge(ch, descCalls, float64(p.calls), p.name)
		}
	}, redisDescs...)
}

type partitionCalls struct {
	name  string
	calls int
}

// partitionCounts returns how many partitions are followed and, for the
// own partition and each followed one, how many calls of node state have
// their Redis copy there.
func (s *syncer) partitionCounts() (int, []partitionCalls) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[int]int{s.own.DB: 0}
	for db := range s.follow {
		n[db] = 0
	}
	for _, st := range s.known {
		if st.has && st.homeSet {
			n[st.home.DB]++
		}
	}
	dbs := make([]int, 0, len(n))
	for db := range n {
		dbs = append(dbs, db)
	}
	sort.Ints(dbs)
	out := make([]partitionCalls, 0, len(dbs))
	for _, db := range dbs {
		out = append(out, partitionCalls{name: rediscalls.Partition{DB: db}.String(), calls: n[db]})
	}
	return len(s.follow), out
}
