package rediscalls

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The scripts select the partition's database themselves (a SELECT inside
// a script does not change the caller's connection), so one client serves
// every partition. Keys are built inside the scripts from the prefix and
// the call id: this is standalone Redis, where a script may touch any key.

// luaLimits starts every script: the caps its loops are bounded by
// (limits.go), whatever a record's fields say.
var luaLimits = "local MAXMEDIAS, MAXPTS = " + strconv.Itoa(MaxMedias) + ", " + strconv.Itoa(MaxPayloadTypes) + "\n"

// writeBody writes the call (ARGV 3–10) into the selected database.
const writeBody = `
local pfx, id, ttl = ARGV[2], ARGV[3], ARGV[4]
local ck = pfx .. 'call:' .. id
local old = math.min(tonumber(redis.call('HGET', ck, 'medias') or '0') or 0, MAXMEDIAS)
local pts = cjson.decode(ARGV[9])
local n = math.min(#pts, MAXMEDIAS)
for i = n, old - 1 do redis.call('DEL', pfx .. 'pt:' .. id .. ':' .. i) end
for i = 1, n do
  local k = pfx .. 'pt:' .. id .. ':' .. (i - 1)
  redis.call('DEL', k)
  local m = pts[i]
  if #m > 0 then
    local f = {}
    for j = 1, math.min(#m, MAXPTS) do f[#f + 1] = tostring(j - 1); f[#f + 1] = m[j] end
    redis.call('HSET', k, unpack(f))
    redis.call('EXPIRE', k, ttl)
  end
end
redis.call('HSET', ck, 'schema', ARGV[10], 'owner', ARGV[5], 'updated', ARGV[6],
  'call', ARGV[7], 'endpoints', ARGV[8], 'medias', n, 'rev', (tonumber(redis.call('HGET', ck, 'rev') or '0') or 0) + 1)
redis.call('EXPIRE', ck, ttl)
return 1
`

// deleteBody deletes the call from the selected database.
const deleteBody = `
local pfx, id = ARGV[2], ARGV[3]
local ck = pfx .. 'call:' .. id
local old = math.min(tonumber(redis.call('HGET', ck, 'medias') or '0') or 0, MAXMEDIAS)
for i = 0, old - 1 do redis.call('DEL', pfx .. 'pt:' .. id .. ':' .. i) end
local deleted = redis.call('DEL', ck)
`

// writeScript: ARGV 1 db, 2 prefix, 3 id, 4 ttl, 5 owner, 6 updated ms,
// 7 call, 8 endpoints, 9 payload types, 10 schema. Returns 0 without
// writing if the call moved away from this partition.
var writeScript = redis.NewScript(luaLimits + `
redis.call('SELECT', ARGV[1])
if redis.call('EXISTS', ARGV[2] .. 'moved:' .. ARGV[3]) == 1 then return 0 end
` + writeBody)

// deleteScript: ARGV 1 db, 2 prefix, 3 id.
var deleteScript = redis.NewScript(luaLimits + `
redis.call('SELECT', ARGV[1])
` + deleteBody + `
return deleted`)

// moveScript: as writeScript, plus ARGV 11 the old partition's db. It
// deletes the call from the old partition, leaves the tombstone there,
// clears any tombstone in the new one and writes the call: in one step.
var moveScript = redis.NewScript(luaLimits + `
redis.call('SELECT', ARGV[11])
` + deleteBody + `
redis.call('SET', ARGV[2] .. 'moved:' .. ARGV[3], ARGV[5], 'EX', ARGV[4])
redis.call('SELECT', ARGV[1])
redis.call('DEL', ARGV[2] .. 'moved:' .. ARGV[3])
` + writeBody)

// readScript: ARGV 1 db, 2 prefix, 3 id. Returns {} if the call is not
// there, else {moved or ”, call hash, payload type hashes...}.
var readScript = redis.NewScript(luaLimits + `
redis.call('SELECT', ARGV[1])
local pfx, id = ARGV[2], ARGV[3]
local ck = pfx .. 'call:' .. id
local moved = redis.call('GET', pfx .. 'moved:' .. id) or ''
local h = redis.call('HGETALL', ck)
if #h == 0 then return {moved} end
local out = {moved, h}
local n = tonumber(redis.call('HGET', ck, 'medias') or '0') or 0
-- Over the cap: no payload types are read; the reader rejects the call.
if n > MAXMEDIAS then n = 0 end
for i = 0, n - 1 do out[#out + 1] = redis.call('HGETALL', pfx .. 'pt:' .. id .. ':' .. i) end
return out
`)

var scripts = []*redis.Script{writeScript, deleteScript, moveScript, readScript}

// ParseURL reads a Redis address in rtpengine's form [PW@]HOST:PORT/DB, or
// a redis:// or rediss:// (TLS) URL with the database as its path. A
// password may also come from RTPENGINE_REDIS_AUTH_PW. The database is the
// node's own partition.
func ParseURL(s string) (*redis.Options, Partition, error) {
	if strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://") || strings.HasPrefix(s, "unix://") {
		o, err := redis.ParseURL(s)
		if err != nil {
			return nil, Partition{}, fmt.Errorf("redis %q: %w", s, err)
		}
		p := Partition{DB: o.DB}
		o.DB = 0
		return o, p, nil
	}
	o := &redis.Options{}
	rest := s
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		o.Password, rest = rest[:i], rest[i+1:]
	}
	if o.Password == "" {
		o.Password = os.Getenv("RTPENGINE_REDIS_AUTH_PW")
	}
	host, db, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, Partition{}, fmt.Errorf("redis %q: want [PW@]HOST:PORT/DB", s)
	}
	n, err := strconv.Atoi(db)
	if err != nil || n < 0 {
		return nil, Partition{}, fmt.Errorf("redis %q: database %q is not a number", s, db)
	}
	if _, port, err := splitHostPort(host); err != nil || port == "" {
		return nil, Partition{}, fmt.Errorf("redis %q: want HOST:PORT before /DB", s)
	}
	o.Addr = host
	return o, Partition{DB: n}, nil
}

// UseCA makes a TLS connection (a rediss:// URL) trust the certificate
// authorities in the PEM file instead of the system's.
func UseCA(o *redis.Options, file string) error {
	if o.TLSConfig == nil {
		return fmt.Errorf("redis CA %s: the address is not TLS (use rediss://)", file)
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("redis CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("redis CA %s: no PEM certificate in it", file)
	}
	o.TLSConfig.RootCAs = pool
	return nil
}

func splitHostPort(s string) (string, string, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", "", errors.New("no port")
	}
	return s[:i], s[i+1:], nil
}

// Store runs the schema's operations on one Redis.
type Store struct {
	rdb *redis.Client
	ttl int
}

// New returns a Store on the given client; keys expire ttl after their
// last write.
func New(rdb *redis.Client, ttl time.Duration) *Store {
	return &Store{rdb: rdb, ttl: max(1, int(ttl/time.Second))}
}

// Client is the store's client.
func (s *Store) Client() *redis.Client { return s.rdb }

// Load loads the scripts (again after a Redis restart).
func (s *Store) Load(ctx context.Context) error {
	for _, sc := range scripts {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("load redis scripts: %w", err)
		}
	}
	return nil
}

// CheckNotifications reads notify-keyspace-events and says what is missing
// for restore to work: keyspace events (K) with generic (g), hash (h) and
// expired (x) events, or A in place of the last three.
func (s *Store) CheckNotifications(ctx context.Context) error {
	m, err := s.rdb.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		return fmt.Errorf("CONFIG GET notify-keyspace-events: %w", err)
	}
	return checkFlags(m["notify-keyspace-events"])
}

func checkFlags(v string) error {
	var missing []string
	if !strings.Contains(v, "K") {
		missing = append(missing, "K (keyspace channel)")
	}
	if !strings.Contains(v, "A") {
		for _, f := range []struct{ c, what string }{{"g", "generic: del"}, {"h", "hash writes"}, {"x", "expired keys"}} {
			if !strings.Contains(v, f.c) {
				missing = append(missing, f.c+" ("+f.what+")")
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("redis notify-keyspace-events is %q; restore needs %s: set it with `CONFIG SET notify-keyspace-events Khgx` or `notify-keyspace-events Khgx` in redis.conf",
			v, strings.Join(missing, ", "))
	}
	return nil
}

// OpKind says what an Op does.
type OpKind int

// The operations.
const (
	// OpWrite writes the call to its partition unless it moved away.
	OpWrite OpKind = iota
	// OpDelete deletes the call from its partition (and from From too,
	// with AlsoFrom: a move of the call was pending).
	OpDelete
	// OpMove takes the call over: written to Part, deleted from From,
	// with a tombstone left in From.
	OpMove
)

// Op is one change of one call.
type Op struct {
	Kind OpKind
	Part Partition // where the call is written or deleted
	From Partition // OpMove: where it was; OpDelete with AlsoFrom: delete there too
	// AlsoFrom makes an OpDelete delete the call in From as well.
	AlsoFrom bool
	ID       string
	Entry    *Entry // OpWrite, OpMove
}

// ErrMoved reports a write refused because the call moved to another
// partition (the tombstone is there).
var ErrMoved = errors.New("the call moved to another node")

// Apply runs the operations in one pipeline, in order, and returns one
// result per operation (nil, ErrMoved, or the error). The returned error
// is set when Redis could not be reached at all; the results are then
// meaningless.
func (s *Store) Apply(ctx context.Context, ops []Op) ([]error, error) {
	res, err := s.apply(ctx, ops)
	if err != nil && isNoScript(err) {
		if err := s.Load(ctx); err != nil {
			return nil, err
		}
		res, err = s.apply(ctx, ops)
	}
	return res, err
}

func (s *Store) apply(ctx context.Context, ops []Op) ([]error, error) {
	out := make([]error, len(ops))
	cmds := make([]*redis.Cmd, len(ops))
	pipe := s.rdb.Pipeline()
	for i, op := range ops {
		switch op.Kind {
		case OpDelete:
			if op.AlsoFrom && op.From != op.Part {
				// Not checked: the result is the primary partition's.
				deleteScript.EvalSha(ctx, pipe, nil, op.From.DB, KeyPrefix, op.ID)
			}
			cmds[i] = deleteScript.EvalSha(ctx, pipe, nil, op.Part.DB, KeyPrefix, op.ID)
		case OpWrite, OpMove:
			if op.Entry == nil {
				out[i] = fmt.Errorf("write call %q: no entry", op.ID)
				continue
			}
			enc, err := encode(op.Entry)
			if err != nil {
				out[i] = err
				continue
			}
			args := []any{op.Part.DB, KeyPrefix, op.ID, s.ttl, op.Entry.Call.Owner, op.Entry.Updated.UnixMilli(),
				enc.call, enc.endpoints, enc.pts, Schema}
			if op.Kind == OpMove {
				cmds[i] = moveScript.EvalSha(ctx, pipe, nil, append(args, op.From.DB)...)
			} else {
				cmds[i] = writeScript.EvalSha(ctx, pipe, nil, args...)
			}
		}
	}
	_, err := pipe.Exec(ctx)
	if err != nil {
		// A pipeline error is the first failed command's; tell a broken
		// connection from per-command errors.
		if isNoScript(err) {
			return nil, err
		}
		if !isCommandError(err) {
			return nil, fmt.Errorf("redis: %w", err)
		}
	}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		v, err := c.Int64()
		switch {
		case err != nil:
			out[i] = fmt.Errorf("call %q: %w", ops[i].ID, err)
		case ops[i].Kind == OpWrite && v == 0:
			out[i] = ErrMoved
		}
	}
	return out, nil
}

// IsTransient reports whether err is a Redis error reply that goes away
// by itself (a restarting, busy or failing-over server): the operation
// should be retried, not dropped.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	for _, p := range []string{"LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOSCRIPT", "OOM", "NOREPLICAS"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// isCommandError reports whether err is an error reply from Redis (the
// connection is fine) rather than a network or context error.
func isCommandError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// Read reads calls of a partition; a call that is not there gives a nil
// entry, with the node it moved to (if it did) in moved. An unreadable
// call gives its error in errs (the keys are left alone).
func (s *Store) Read(ctx context.Context, p Partition, ids []string) (entries []*Entry, moved []string, errs []error, err error) {
	entries, moved, errs, err = s.read(ctx, p, ids)
	if err != nil && isNoScript(err) {
		if err := s.Load(ctx); err != nil {
			return nil, nil, nil, err
		}
		entries, moved, errs, err = s.read(ctx, p, ids)
	}
	return entries, moved, errs, err
}

func (s *Store) read(ctx context.Context, p Partition, ids []string) ([]*Entry, []string, []error, error) {
	cmds := make([]*redis.Cmd, len(ids))
	pipe := s.rdb.Pipeline()
	for i, id := range ids {
		cmds[i] = readScript.EvalSha(ctx, pipe, nil, p.DB, KeyPrefix, id)
	}
	if _, err := pipe.Exec(ctx); err != nil && (isNoScript(err) || !isCommandError(err)) {
		return nil, nil, nil, err
	}
	entries := make([]*Entry, len(ids))
	moved := make([]string, len(ids))
	errs := make([]error, len(ids))
	for i, c := range cmds {
		v, err := c.Slice()
		if err != nil {
			errs[i] = fmt.Errorf("read call %q: %w", ids[i], err)
			continue
		}
		if len(v) > 0 {
			moved[i], _ = v[0].(string)
		}
		if len(v) < 2 {
			continue
		}
		h, err := toMap(v[1])
		if err != nil {
			errs[i] = fmt.Errorf("read call %q: %w", ids[i], err)
			continue
		}
		pts := make([]map[string]string, 0, len(v)-2)
		for _, x := range v[2:] {
			m, err := toMap(x)
			if err != nil {
				errs[i] = fmt.Errorf("read call %q: %w", ids[i], err)
				break
			}
			pts = append(pts, m)
		}
		if errs[i] != nil {
			continue
		}
		entries[i], errs[i] = decode(ids[i], h, pts)
	}
	return entries, moved, errs, nil
}

// toMap turns a HGETALL reply inside a script reply (a flat array) into a
// map.
func toMap(v any) (map[string]string, error) {
	a, ok := v.([]any)
	if !ok || len(a)%2 != 0 {
		return nil, fmt.Errorf("unexpected reply %T", v)
	}
	m := make(map[string]string, len(a)/2)
	for i := 0; i < len(a); i += 2 {
		k, ok1 := a[i].(string)
		val, ok2 := a[i+1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("unexpected hash entry %T/%T", a[i], a[i+1])
		}
		m[k] = val
	}
	return m, nil
}

// Scan lists the call ids of a partition with SCAN (never KEYS), in
// batches handed to fn.
func (s *Store) Scan(ctx context.Context, p Partition, fn func(ids []string) error) error {
	// A connection of its own: SELECT changes it, and every other command
	// of the store selects its database inside its script.
	conn := s.rdb.Conn()
	defer conn.Close()
	if err := conn.Select(ctx, p.DB).Err(); err != nil {
		return fmt.Errorf("scan %s: %w", p, err)
	}
	var cursor uint64
	for {
		keys, next, err := conn.Scan(ctx, cursor, KeyPrefix+"call:*", 1000).Result()
		if err != nil {
			return fmt.Errorf("scan %s: %w", p, err)
		}
		ids := make([]string, 0, len(keys))
		for _, k := range keys {
			ids = append(ids, strings.TrimPrefix(k, KeyPrefix+"call:"))
		}
		if len(ids) > 0 {
			if err := fn(ids); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
