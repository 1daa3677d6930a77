package redissync

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/api/syncapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/metrics"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/rediscalls"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (err error) {
	conn, err := bus.Connect(ctx, cfg.Bus, cfg.NodeID, "redis-sync", log)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A bus connection closed for good ends the run like a shutdown, and
	// the run then fails with why: the supervisor restarts the daemon.
	ctx, stopLoss := conn.WithLoss(ctx)
	defer stopLoss()
	defer func() {
		if lerr := conn.LostErr(); lerr != nil {
			err = lerr
		}
	}()
	svc, err := bus.NewService(conn, "redis-sync", "rtpkit Redis persistence and restore")
	if err != nil {
		return err
	}
	defer func() { _ = svc.Stop() }()
	if cfg.Redis == "" {
		log.Info("redis-sync idle: no --redis given, calls are not persisted")
		reg := metrics.NewRegistry("redis-sync")
		reg.MustRegister(idleCollector())
		ms, err := metrics.Start(ctx, cfg.Metrics, reg, log)
		if err != nil {
			return err
		}
		defer func() { _ = ms.Close() }()
		if err := bus.Handle(svc, syncapi.StatusEndpoint, func(context.Context, api.Empty) (syncapi.Status, error) {
			return syncapi.Status{}, nil
		}); err != nil {
			return err
		}
		if err := svc.Ready(); err != nil {
			return err
		}
		_ = sdnotify.Ready()
		<-ctx.Done()
		return nil
	}
	opts, own, err := rediscalls.ParseURL(cfg.Redis)
	if err != nil {
		return err
	}
	if cfg.RedisCA != "" {
		if err := rediscalls.UseCA(opts, cfg.RedisCA); err != nil {
			return err
		}
	}
	opts.DialTimeout = cfg.RedisConnectTimeout
	opts.ReadTimeout, opts.WriteTimeout = cfg.RedisCmdTimeout, cfg.RedisCmdTimeout
	opts.ClientName = "rtpkit-redis-sync-" + cfg.NodeID
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	store := rediscalls.New(rdb, time.Duration(cfg.RedisExpires)*time.Second)
	where := fmt.Sprintf("%s (own %s)", opts.Addr, own)

	st, err := nodestate.Open(ctx, conn, nodestate.Options{})
	if err != nil {
		return err
	}
	table := nodestate.Calls(st)
	s := newSyncer(cfg.NodeID, own, store, table, conn, cfg.RedisQueue, cfg.ActiveSwitchover, log)
	s.auditEvery = cfg.AuditInterval
	reg := metrics.NewRegistry("redis-sync")
	reg.MustRegister(s.collector(cfg.RedisQueue))
	ms, err := metrics.Start(ctx, cfg.Metrics, reg, log)
	if err != nil {
		return err
	}
	defer func() { _ = ms.Close() }()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	// Node state first: the initial records, then changes.
	w, err := table.Watch(ctx, log)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	synced := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range w.C() {
			switch {
			case ev.Synced:
				close(synced)
			case ev.Op == nodestate.OpPut:
				s.onPut(ev.Value)
			default:
				s.onDelete(ev.ID)
			}
		}
	}()
	select {
	case <-synced:
	case <-ctx.Done():
		return nil
	}

	actSub, err := bus.Subscribe(conn, fwdapi.ActivityEvent, func(_ string, a fwdapi.Activity) {
		s.onActivity(ctx, a)
	})
	if err != nil {
		return err
	}
	defer func() { _ = actSub.Unsubscribe() }()

	for _, h := range []error{
		bus.Handle(svc, syncapi.KeyspaceEndpoint, func(hctx context.Context, r syncapi.KeyspaceRequest) (syncapi.KeyspaceReply, error) {
			return s.keyspace(ctx, r)
		}),
		bus.Handle(svc, syncapi.ActiveEndpoint, func(context.Context, api.Empty) (syncapi.OwnershipReply, error) {
			return syncapi.OwnershipReply{Calls: s.takeOver(ctx, nil)}, nil
		}),
		bus.Handle(svc, syncapi.StandbyEndpoint, func(context.Context, api.Empty) (syncapi.OwnershipReply, error) {
			return syncapi.OwnershipReply{Calls: s.standBy(ctx)}, nil
		}),
		bus.Handle(svc, syncapi.StatusEndpoint, func(context.Context, api.Empty) (syncapi.Status, error) {
			return syncapi.Status{Enabled: true, Redis: where, Own: own.DB, Followed: s.followed(), Counters: s.counters()}, nil
		}),
	} {
		if h != nil {
			return h
		}
	}
	if err := svc.Ready(); err != nil {
		return err
	}

	// Redis: check it, load the own partition (retrying while it is
	// away), then follow the group's partitions.
	wg.Add(1 + len(s.reads))
	go func() { defer wg.Done(); s.runWriter(ctx) }()
	for _, q := range s.reads {
		go func() { defer wg.Done(); s.runReader(ctx, q) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for attempt := 0; ctx.Err() == nil; attempt++ {
			err := s.connect(ctx, len(cfg.SubscribeKeyspace) > 0)
			if err == nil {
				err = s.restoreOwn(ctx)
			}
			if err == nil {
				return
			}
			if attempt == 0 {
				log.Error("redis not usable; calls keep working and their writes wait", "redis", where, "err", err)
			} else {
				s.errs.warn("redis still not usable", "redis", where, "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	for _, db := range cfg.SubscribeKeyspace {
		s.startFollow(ctx, rediscalls.Partition{DB: db})
	}
	// Foreign calls of partitions no longer followed go.
	s.dropUnfollowed(ctx)
	log.Info("redis-sync ready", "redis", where, "follows", s.followed(), "expires", cfg.RedisExpires, "active_switchover", cfg.ActiveSwitchover)
	defer cfg.Watchdog.Add("syncer", func(context.Context) error { s.followed(); return nil })()
	_ = sdnotify.Ready()
	<-ctx.Done()
	for _, db := range s.followed() {
		s.stopFollowQuiet(rediscalls.Partition{DB: db})
	}
	return nil
}

// connect checks that Redis answers, loads the scripts, and says exactly
// what is wrong with notify-keyspace-events when this node follows
// partitions.
func (s *syncer) connect(ctx context.Context, follows bool) error {
	if err := s.store.Client().Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if err := s.store.Load(ctx); err != nil {
		return err
	}
	if follows {
		if err := s.store.CheckNotifications(ctx); err != nil {
			s.log.Error("keyspace notifications will not arrive; restore only happens on resync", "err", err)
		}
	}
	return nil
}

// keyspace serves ksadd / ksrm / kslist.
func (s *syncer) keyspace(ctx context.Context, r syncapi.KeyspaceRequest) (syncapi.KeyspaceReply, error) {
	var rep syncapi.KeyspaceReply
	switch r.Op {
	case "list", "":
	case "add":
		if r.DB < 0 {
			return rep, bus.Errorf(bus.CodeBadRequest, "keyspace add %d: not a database number", r.DB)
		}
		if r.DB == s.own.DB {
			return rep, bus.Errorf(bus.CodeBadRequest, "keyspace add %d: that is this node's own database", r.DB)
		}
		rep.Changed = s.startFollow(ctx, rediscalls.Partition{DB: r.DB})
	case "remove":
		rep.Removed, rep.Changed = s.stopFollow(ctx, rediscalls.Partition{DB: r.DB})
	default:
		return rep, bus.Errorf(bus.CodeBadRequest, "keyspace: unknown op %q (add, remove, list)", r.Op)
	}
	rep.DBs = s.followed()
	return rep, nil
}

// dropUnfollowed removes foreign calls restored from partitions this node
// no longer follows (configuration changed across a restart).
func (s *syncer) dropUnfollowed(ctx context.Context) {
	s.mu.Lock()
	var gone []string
	for id, st := range s.known {
		if st.has && st.rec.Foreign && st.homeSet && !s.followsLocked(st.home) && st.rec.Source == nodestate.SourceRedis {
			gone = append(gone, id)
		}
	}
	s.mu.Unlock()
	for _, id := range gone {
		s.remove(ctx, id)
	}
	if len(gone) > 0 {
		s.log.Info("removed foreign calls of partitions no longer followed", "calls", len(gone))
	}
}

// stopFollowQuiet ends a subscription at shutdown, keeping the calls.
func (s *syncer) stopFollowQuiet(p rediscalls.Partition) {
	s.mu.Lock()
	f := s.follow[p.DB]
	delete(s.follow, p.DB)
	s.mu.Unlock()
	if f != nil {
		f.cancel()
		<-f.done
	}
}
