package ratelimiting

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Config is rate-limiting's configuration with Kong's field names and
// defaults. The `kong` tags are the constraints DecodeConfig checks and
// /schemas publishes.
type Config struct {
	// Second to Year are the number of requests allowed per window; nil
	// leaves that window unlimited. At least one is required, and a longer
	// window's limit may not be lower than a shorter one's.
	Second *float64 `json:"second" kong:"gt=0"`
	Minute *float64 `json:"minute" kong:"gt=0"`
	Hour   *float64 `json:"hour" kong:"gt=0"`
	Day    *float64 `json:"day" kong:"gt=0"`
	Month  *float64 `json:"month" kong:"gt=0"`
	Year   *float64 `json:"year" kong:"gt=0"`
	// LimitBy says whom requests are counted against: the consumer (the
	// default), the credential, the client ip, the service, the value of
	// header HeaderName, or the path Path. Without one (no consumer, no
	// such header, another path) the client ip is used.
	LimitBy    string  `json:"limit_by" kong:"one_of=consumer|credential|ip|service|header|path"`
	HeaderName *string `json:"header_name"`
	Path       *string `json:"path"`
	// Policy is where counters live: "local" (in this process, the
	// default), "cluster" (in the datastore, shared by the nodes) or
	// "redis" (on the Redis server of the redis_* fields, shared by every
	// gateway using it).
	Policy string `json:"policy" kong:"one_of=local|cluster|redis"`
	// FaultTolerant lets requests through, without rate-limit headers, when
	// the cluster or redis counters cannot be reached; false answers 500.
	FaultTolerant bool `json:"fault_tolerant" kong:"required"`
	// The Redis server of the redis policy (Kong's flat redis_* fields).
	RedisHost       *string `json:"redis_host"`
	RedisPort       int     `json:"redis_port" kong:"between=0|65535"`
	RedisPassword   *string `json:"redis_password"`
	RedisUsername   *string `json:"redis_username"`
	RedisSSL        bool    `json:"redis_ssl" kong:"required"`
	RedisSSLVerify  bool    `json:"redis_ssl_verify" kong:"required"`
	RedisServerName *string `json:"redis_server_name"`
	RedisTimeout    int     `json:"redis_timeout" kong:"between=0|2147483646"`
	RedisDatabase   int     `json:"redis_database"`
	// HideClientHeaders leaves the rate-limit headers out of responses.
	HideClientHeaders bool `json:"hide_client_headers" kong:"required"`
	// ErrorCode and ErrorMessage are the answer to a request over a limit.
	ErrorCode    float64 `json:"error_code" kong:"gt=0"`
	ErrorMessage string  `json:"error_message"`
	// SyncRate is Kong's batching of cluster and redis counter writes, in
	// seconds; -1 (the default) writes synchronously. Counters are always
	// written synchronously here: other values are accepted and behave as -1.
	SyncRate float64 `json:"sync_rate" kong:"required"`
}

// defaultConfig returns Kong's defaults.
func defaultConfig() Config {
	return Config{LimitBy: "consumer", Policy: "local", FaultTolerant: true, RedisPort: 6379,
		RedisTimeout: 2000, ErrorCode: 429, ErrorMessage: msgExceeded, SyncRate: -1}
}

// DefaultConfig implements plugins.Describer.
func (*Plugin) DefaultConfig() any {
	c := defaultConfig()
	return &c
}

// EntityChecks implements plugins.EntityChecker: Kong's checks across
// fields, which parseConfig enforces.
func (*Plugin) EntityChecks() []any {
	periods := make([]string, len(periodNames))
	for i, n := range periodNames {
		periods[i] = "config." + n
	}
	cond := func(field, value, then string) any {
		return map[string]any{"conditional": map[string]any{"if_field": field, "if_match": map[string]any{"eq": value},
			"then_field": then, "then_match": map[string]any{"required": true}}}
	}
	return []any{map[string]any{"at_least_one_of": periods},
		cond("config.policy", "redis", "config.redis_host"),
		cond("config.limit_by", "header", "config.header_name"),
		cond("config.limit_by", "path", "config.path")}
}

func (c *Config) limits() [numPeriods]*float64 {
	return [numPeriods]*float64{c.Second, c.Minute, c.Hour, c.Day, c.Month, c.Year}
}

func parseConfig(raw json.RawMessage) (Config, error) {
	c := defaultConfig()
	if err := plugins.DecodeConfig(raw, &c); err != nil {
		return Config{}, err
	}
	fe := plugins.FieldErrors{}
	var prev *float64
	prevName, any := "", false
	for i, l := range c.limits() {
		name := periodNames[i]
		if l == nil {
			continue
		}
		any = true
		if *l != float64(int64(*l)) {
			fe[name] = "value must be an integer"
			continue
		}
		if prev != nil && *l < *prev {
			fe["@entity"] = fmt.Sprintf("The limit for %s(%g) cannot be lower than the limit for %s(%g)", name, *l, prevName, *prev)
		}
		prev, prevName = l, name
	}
	if !any {
		quoted := make([]string, len(periodNames))
		for i, n := range periodNames {
			quoted[i] = "'config." + n + "'"
		}
		fe["@entity"] = "at least one of these fields must be non-empty: " + strings.Join(quoted[:], ", ")
	}
	switch {
	case c.LimitBy == "header" && (c.HeaderName == nil || *c.HeaderName == ""):
		fe["header_name"] = "required field missing"
	case c.LimitBy == "path" && (c.Path == nil || *c.Path == ""):
		fe["path"] = "required field missing"
	case c.LimitBy == "path" && !strings.HasPrefix(*c.Path, "/"):
		fe["path"] = "should start with: /"
	}
	if c.Policy == "redis" && (c.RedisHost == nil || *c.RedisHost == "") {
		fe["redis_host"] = "required field missing"
	}
	if c.ErrorCode != float64(int(c.ErrorCode)) || c.ErrorCode < 100 || c.ErrorCode > 599 {
		fe["error_code"] = "value should be between 100 and 599"
	}
	if len(fe) > 0 {
		return Config{}, fe
	}
	return c, nil
}

var periodNames = [numPeriods]string{"second", "minute", "hour", "day", "month", "year"}
