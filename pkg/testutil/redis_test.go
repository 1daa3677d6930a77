package testutil_test

import (
	"context"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func TestRedisKeyspaceNotification(t *testing.T) {
	r := testutil.StartRedis(t, testutil.RedisOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cfg, err := r.WaitKeyspaceConfig(ctx); err != nil || cfg == "" {
		t.Fatalf("notify-keyspace-events = %q, %v", cfg, err)
	}
	sub := r.Client(3)
	ps := sub.PSubscribe(ctx, "__keyspace@3__:rtpkit:*")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	other := r.Client(4)
	if err := other.HSet(ctx, "rtpkit:call:other-db", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Client(3).HSet(ctx, "rtpkit:call:abc", "pt", "0/PCMU/8000").Err(); err != nil {
		t.Fatal(err)
	}
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Channel != "__keyspace@3__:rtpkit:call:abc" || msg.Payload != "hset" {
		t.Fatalf("notification %q %q; want the hset in DB 3 only", msg.Channel, msg.Payload)
	}
}

func TestRedisKillAndRestartKeepsData(t *testing.T) {
	r := testutil.StartRedis(t, testutil.RedisOptions{Persist: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := r.Client(0)
	if err := c.Set(ctx, "rtpkit:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pid := r.PID()
	r.Kill()
	if testutil.Alive(pid) {
		t.Fatalf("redis %d alive after Kill", pid)
	}
	r.Restart()
	if v, err := r.Client(0).Get(ctx, "rtpkit:k").Result(); err != nil || v != "v" {
		t.Fatalf("after restart: %q %v", v, err)
	}
}
