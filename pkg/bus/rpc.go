package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/version"
)

// Service is one daemon's presence on the bus: a NATS micro service whose
// endpoints live under the node's subject space.
type Service struct {
	conn  *Conn
	svc   micro.Service
	hello api.Hello
}

var semverRe = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// NewService registers daemon on the bus. Its ping subjects answer once
// Ready is called.
func NewService(c *Conn, daemon, description string) (*Service, error) {
	v := version.Version
	if !semverRe.MatchString(v) {
		v = "0.0.0-" + sanitizeSemverPart(v)
	}
	svc, err := micro.AddService(c.NC, micro.Config{
		Name:        "rtpkit-" + daemon,
		Version:     v,
		Description: description,
		Metadata:    map[string]string{"node": c.node},
	})
	if err != nil {
		return nil, fmt.Errorf("register %s on the bus: %w", daemon, err)
	}
	s := &Service{conn: c, svc: svc, hello: api.Hello{
		Node: c.node, Daemon: daemon, PID: os.Getpid(), Version: version.Version, Started: time.Now().UTC(),
	}}
	return s, nil
}

// Ready answers the daemon's ping subjects. Daemons call it once every
// other endpoint is served, so that whoever sees the ping (a supervisor, a
// test, rtpctl status) finds the rest of the daemon's API already there.
func (s *Service) Ready() error {
	ping := func(context.Context, api.Empty) (api.Hello, error) { return s.hello, nil }
	if err := Handle(s, api.Ping(s.hello.Daemon), ping); err != nil {
		return err
	}
	return Handle(s, api.NodePing, ping, NoQueue())
}

func sanitizeSemverPart(v string) string {
	b := []byte(v)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "dev"
	}
	return string(b)
}

// Conn returns the connection the service runs on.
func (s *Service) Conn() *Conn { return s.conn }

// Stop unsubscribes every endpoint of the service.
func (s *Service) Stop() error { return s.svc.Stop() }

// HandleOption tunes an endpoint.
type HandleOption func(*handleOpts)

type handleOpts struct{ noQueue bool }

// NoQueue makes every instance of the endpoint receive each request, instead
// of one member of a queue group (for node-wide scatter requests).
func NoQueue() HandleOption { return func(o *handleOpts) { o.noQueue = true } }

// Handle serves endpoint e with h: requests are decoded from JSON into Req,
// replies encoded from Resp. The endpoint is reachable when Handle returns. An error returned by h reaches the caller as an
// *Error; its code is the *Error's if h returned one, 500 otherwise.
func Handle[Req, Resp any](s *Service, e api.Endpoint[Req, Resp], h func(context.Context, Req) (Resp, error), opts ...HandleOption) error {
	name, subject := e.Name(), e.Subject(s.conn.node)
	var o handleOpts
	for _, opt := range opts {
		opt(&o)
	}
	eopts := []micro.EndpointOpt{micro.WithEndpointSubject(subject)}
	if o.noQueue {
		eopts = append(eopts, micro.WithEndpointQueueGroupDisabled())
	}
	handler := micro.HandlerFunc(func(r micro.Request) {
		var req Req
		if data := r.Data(); len(data) > 0 {
			if err := json.Unmarshal(data, &req); err != nil {
				_ = r.Error(CodeBadRequest, fmt.Sprintf("bad %s request: %v", name, err), nil)
				return
			}
		}
		resp, err := h(context.Background(), req)
		if err != nil {
			var be *Error
			if errors.As(err, &be) {
				_ = r.Error(be.Code, err.Error(), nil)
			} else {
				_ = r.Error(CodeInternal, err.Error(), nil)
			}
			return
		}
		if err := r.RespondJSON(resp); err != nil {
			s.conn.log.Warn("bus reply failed", "subject", subject, "err", err)
		}
	})
	if err := s.svc.AddEndpoint(name, handler, eopts...); err != nil {
		return fmt.Errorf("serve %s on %s: %w", name, subject, err)
	}
	// Once Handle returns, the server knows the subscription: a request sent
	// by another connection right after finds its responder.
	if err := s.conn.NC.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("serve %s on %s: flush: %w", name, subject, err)
	}
	return nil
}

// Request sends req to endpoint e and decodes the reply into Resp. A remote
// failure comes back as *Error; no responder as ErrNoResponders.
func Request[Req, Resp any](ctx context.Context, c *Conn, e api.Endpoint[Req, Resp], req Req) (Resp, error) {
	subject := e.Subject(c.node)
	var resp Resp
	data, err := json.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("encode request for %s: %w", subject, err)
	}
	msg, err := c.NC.RequestWithContext(ctx, subject, data)
	if err != nil {
		if isNoResponders(err) {
			return resp, fmt.Errorf("%s: %w", subject, ErrNoResponders)
		}
		return resp, fmt.Errorf("request %s: %w", subject, err)
	}
	if err := replyError(msg); err != nil {
		return resp, err
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return resp, fmt.Errorf("decode reply from %s: %w", subject, err)
	}
	return resp, nil
}

// Scatter sends req to endpoint e and collects every reply that arrives before
// ctx ends or `wait` passes after the first one (for node-wide requests such
// as api.NodePing that all daemons answer).
func Scatter[Req, Resp any](ctx context.Context, c *Conn, e api.Endpoint[Req, Resp], req Req, wait time.Duration) ([]Resp, error) {
	subject := e.Subject(c.node)
	data, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request for %s: %w", subject, err)
	}
	inbox := c.NC.NewRespInbox()
	sub, err := c.NC.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("scatter %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.NC.PublishRequest(subject, inbox, data); err != nil {
		return nil, fmt.Errorf("scatter %s: %w", subject, err)
	}
	var out []Resp
	for {
		wctx := ctx
		var cancel context.CancelFunc = func() {}
		if len(out) > 0 {
			wctx, cancel = context.WithTimeout(ctx, wait)
		}
		msg, err := sub.NextMsgWithContext(wctx)
		cancel()
		if err != nil {
			if len(out) > 0 || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return out, nil
			}
			return out, fmt.Errorf("scatter %s: %w", subject, err)
		}
		if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
			return out, fmt.Errorf("%s: %w", subject, ErrNoResponders)
		}
		if replyError(msg) != nil {
			continue
		}
		var r Resp
		if json.Unmarshal(msg.Data, &r) == nil {
			out = append(out, r)
		}
	}
}

// Publish sends msg, JSON-encoded, as event e (fire and forget).
func Publish[T any](c *Conn, e api.Event[T], msg T) error {
	subject := e.Subject(c.node)
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode %s: %w", subject, err)
	}
	if err := c.NC.Publish(subject, data); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}

// Subscribe calls fn for every message of event e that decodes as T;
// messages that do not are logged and dropped. The subscription is active
// on the server when Subscribe returns.
func Subscribe[T any](c *Conn, e api.Event[T], fn func(subject string, msg T)) (*nats.Subscription, error) {
	subject := e.Subject(c.node)
	sub, err := c.NC.Subscribe(subject, func(m *nats.Msg) {
		var v T
		if err := json.Unmarshal(m.Data, &v); err != nil {
			c.log.Warn("undecodable bus message", "subject", m.Subject, "err", err)
			return
		}
		fn(m.Subject, v)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	if err := c.NC.FlushTimeout(5 * time.Second); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe %s: flush: %w", subject, err)
	}
	return sub, nil
}

func replyError(msg *nats.Msg) error {
	if msg.Header == nil {
		return nil
	}
	desc := msg.Header.Get(micro.ErrorHeader)
	if desc == "" {
		return nil
	}
	code := msg.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		code = CodeInternal
	}
	return &Error{Code: code, Message: desc}
}
