package redissync

import (
	"reflect"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/rediscalls"
)

func TestQueue(t *testing.T) {
	a, b := rediscalls.Partition{DB: 1}, rediscalls.Partition{DB: 2}
	w := func(id string) rediscalls.Op { return rediscalls.Op{Kind: rediscalls.OpWrite, Part: b, ID: id} }
	mv := func(id string) rediscalls.Op { return rediscalls.Op{Kind: rediscalls.OpMove, Part: b, From: a, ID: id} }
	del := func(id string) rediscalls.Op { return rediscalls.Op{Kind: rediscalls.OpDelete, Part: b, ID: id} }
	tests := []struct {
		name  string
		puts  []rediscalls.Op
		max   int
		want  []rediscalls.Op
		drops uint64
	}{
		{"latest state keeps its place", []rediscalls.Op{w("x"), w("y"), w("x")}, 10, []rediscalls.Op{w("x"), w("y")}, 0},
		{"a move stays a move", []rediscalls.Op{mv("x"), w("x")}, 10, []rediscalls.Op{mv("x")}, 0},
		{"delete after a pending move deletes in both partitions", []rediscalls.Op{mv("x"), del("x")}, 10,
			[]rediscalls.Op{{Kind: rediscalls.OpDelete, Part: b, From: a, AlsoFrom: true, ID: "x"}}, 0},
		{"bounded: the oldest goes", []rediscalls.Op{w("x"), w("y"), w("z")}, 2, []rediscalls.Op{w("y"), w("z")}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(tt.max)
			for _, op := range tt.puts {
				q.put(op)
			}
			if got := q.take(100); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("take = %+v, want %+v", got, tt.want)
			}
			if q.drops() != tt.drops || q.len() != 0 {
				t.Errorf("drops %d len %d", q.drops(), q.len())
			}
		})
	}
	// A failed batch goes back ahead of newer calls, merged with any newer
	// change of the same call.
	q := newQueue(10)
	q.put(w("x"))
	q.put(w("y"))
	batch := q.take(1)
	q.put(w("z"))
	q.put(del("x"))
	q.requeue(batch)
	if got := q.take(10); !reflect.DeepEqual(got, []rediscalls.Op{w("y"), w("z"), del("x")}) {
		t.Errorf("after requeue: %+v", got)
	}
}
