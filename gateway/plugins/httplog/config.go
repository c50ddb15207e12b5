package httplog

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Config is http-log's configuration with Kong 3.9's field names and
// defaults.
type Config struct {
	// HTTPEndpoint is the log server's URL (http or https); user info in
	// it is sent as Basic authorization.
	HTTPEndpoint *string `json:"http_endpoint" kong:"required"`
	// Method is POST (default), PUT or PATCH.
	Method string `json:"method" kong:"one_of=POST|PUT|PATCH"`
	// ContentType is sent with each batch.
	ContentType string `json:"content_type" kong:"one_of=application/json|application/json; charset=utf-8"`
	// Timeout bounds each send, Keepalive how long an idle connection to
	// the log server is kept, both in milliseconds.
	Timeout   float64 `json:"timeout"`
	Keepalive float64 `json:"keepalive"`
	// RetryCount, QueueSize and FlushTimeout are Kong's deprecated
	// fields: QueueSize stands for queue.max_batch_size and FlushTimeout
	// for queue.max_coalescing_delay when those are left at their
	// defaults; RetryCount is ignored (queue.max_retry_time bounds
	// retries), as in Kong 3.x.
	RetryCount   *int     `json:"retry_count"`
	QueueSize    *int     `json:"queue_size"`
	FlushTimeout *float64 `json:"flush_timeout"`
	// Headers are sent with each batch; they cannot be Host,
	// Content-Length or Content-Type.
	Headers map[string]string `json:"headers"`
	// Queue is Kong 3.x's queue: batching, bounds and retries.
	Queue QueueConfig `json:"queue"`
	// CustomFieldsByLua is Kong's Lua expressions for extra fields.
	// Sluice runs no Lua: only an empty map (or null) is accepted.
	CustomFieldsByLua map[string]string `json:"custom_fields_by_lua"`
}

// QueueConfig is Kong's typedefs.queue.
type QueueConfig struct {
	// MaxBatchSize entries are sent together (a JSON array when above 1).
	MaxBatchSize int `json:"max_batch_size" kong:"between=1|1000000"`
	// MaxCoalescingDelay is how long, in seconds, a batch waits for more
	// entries after its first.
	MaxCoalescingDelay float64 `json:"max_coalescing_delay" kong:"between=0|3600"`
	// MaxEntries bounds the entries waiting; more are dropped.
	MaxEntries int `json:"max_entries" kong:"between=1|1000000"`
	// MaxBytes bounds the bytes waiting; nil: no bound.
	MaxBytes *int `json:"max_bytes"`
	// MaxRetryTime is how long, in seconds, a failing batch is retried
	// before it is dropped.
	MaxRetryTime float64 `json:"max_retry_time"`
	// InitialRetryDelay is the first wait between tries, doubled each
	// time up to MaxRetryDelay (seconds).
	InitialRetryDelay float64 `json:"initial_retry_delay" kong:"between=0.001|1000000"`
	MaxRetryDelay     float64 `json:"max_retry_delay" kong:"between=0.001|1000000"`
	// ConcurrencyLimit is 1 (one batch in flight) or -1 (no limit).
	ConcurrencyLimit int `json:"concurrency_limit" kong:"one_of=-1|1"`
}

func defaultConfig() Config {
	return Config{Method: "POST", ContentType: "application/json", Timeout: 10000, Keepalive: 60000,
		Queue: QueueConfig{MaxBatchSize: 1, MaxCoalescingDelay: 1, MaxEntries: 10000, MaxRetryTime: 60,
			InitialRetryDelay: 0.01, MaxRetryDelay: 60, ConcurrencyLimit: 1}}
}

// DefaultConfig implements plugins.Describer.
func (*Plugin) DefaultConfig() any {
	c := defaultConfig()
	return &c
}

// headerName is Kong's header_name: an RFC 7230 token.
var headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

// settings is a Config made ready to send with.
type settings struct {
	endpoint      string // without user info
	auth          string // Basic authorization from the user info, or ""
	method        string
	contentType   string
	headers       map[string]string
	timeout       time.Duration
	keepalive     time.Duration
	batch         int
	coalesce      time.Duration
	maxEntries    int
	maxBytes      int64 // 0: no bound
	maxRetryTime  time.Duration
	initialDelay  time.Duration
	maxRetryDelay time.Duration
	unlimited     bool // concurrency_limit -1
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

func parseConfig(raw json.RawMessage) (Config, settings, error) {
	c := defaultConfig()
	if err := plugins.DecodeConfig(raw, &c); err != nil {
		return Config{}, settings{}, err
	}
	fe := plugins.FieldErrors{}
	var u *url.URL
	if c.HTTPEndpoint != nil {
		var err error
		u, err = url.Parse(*c.HTTPEndpoint)
		switch {
		case err != nil:
			fe["http_endpoint"] = "invalid url: " + err.Error()
		case u.Scheme != "http" && u.Scheme != "https":
			fe["http_endpoint"] = "missing or unsupported scheme in url (http or https)"
		case u.Host == "":
			fe["http_endpoint"] = "missing host in url"
		}
	}
	for name := range c.Headers {
		switch {
		case !headerName.MatchString(name):
			fe["headers"] = "'" + name + "' is not a valid header"
		case strings.EqualFold(name, "host"), strings.EqualFold(name, "content-length"), strings.EqualFold(name, "content-type"):
			fe["headers"] = "cannot contain '" + canonical(name) + "' header"
		case strings.EqualFold(name, "authorization") && u != nil && u.User != nil:
			fe["@entity"] = "specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed"
		}
	}
	if len(c.CustomFieldsByLua) > 0 {
		fe["custom_fields_by_lua"] = "Lua code is not supported by Sluice: leave custom_fields_by_lua empty"
	}
	if c.Timeout < 0 {
		fe["timeout"] = "value must be greater than or equal to 0"
	}
	if len(fe) > 0 {
		return Config{}, settings{}, fe
	}
	return c, c.settings(u), nil
}

func canonical(name string) string {
	switch strings.ToLower(name) {
	case "host":
		return "Host"
	case "content-length":
		return "Content-Length"
	}
	return "Content-Type"
}

// settings derives the sending settings; deprecated fields stand in for
// the queue's as Kong's Queue.get_plugin_params does.
func (c *Config) settings(u *url.URL) settings {
	q := c.Queue
	if c.QueueSize != nil && *c.QueueSize > 0 && q.MaxBatchSize == 1 {
		q.MaxBatchSize = *c.QueueSize
	}
	if c.FlushTimeout != nil && q.MaxCoalescingDelay == 1 {
		q.MaxCoalescingDelay = *c.FlushTimeout
	}
	s := settings{method: c.Method, contentType: c.ContentType, headers: c.Headers,
		timeout: time.Duration(c.Timeout * float64(time.Millisecond)), keepalive: time.Duration(c.Keepalive * float64(time.Millisecond)),
		batch: q.MaxBatchSize, coalesce: seconds(q.MaxCoalescingDelay), maxEntries: q.MaxEntries,
		maxRetryTime: seconds(q.MaxRetryTime), initialDelay: seconds(q.InitialRetryDelay),
		maxRetryDelay: seconds(q.MaxRetryDelay), unlimited: q.ConcurrencyLimit == -1}
	if q.MaxBytes != nil && *q.MaxBytes > 0 {
		s.maxBytes = int64(*q.MaxBytes)
	}
	if u.User != nil {
		s.auth = "Basic " + basicAuth(u.User)
		clean := *u
		clean.User = nil
		s.endpoint = clean.String()
	} else {
		s.endpoint = u.String()
	}
	return s
}
