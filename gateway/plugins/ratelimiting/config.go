package ratelimiting

import (
	"encoding/json"
	"fmt"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Config is rate-limiting's configuration with Kong's field names.
type Config struct {
	// Second, Minute, Hour and Day are the number of requests allowed per
	// window; nil leaves that window unlimited. At least one is required.
	Second *float64 `json:"second"`
	Minute *float64 `json:"minute"`
	Hour   *float64 `json:"hour"`
	Day    *float64 `json:"day"`
	// LimitBy is "consumer" (the default), "credential" or "ip"; the
	// first two fall back to the client IP when there is none.
	LimitBy string `json:"limit_by"`
	// Policy must be "local" (the default): counters are in process.
	Policy string `json:"policy"`
	// FaultTolerant is accepted for compatibility; the local policy cannot
	// fail. Default true.
	FaultTolerant bool `json:"fault_tolerant"`
	// HideClientHeaders leaves the rate-limit headers out of responses.
	HideClientHeaders bool `json:"hide_client_headers"`
}

func (c *Config) limits() [numPeriods]*float64 {
	return [numPeriods]*float64{c.Second, c.Minute, c.Hour, c.Day}
}

func parseConfig(raw json.RawMessage) (Config, error) {
	c := Config{LimitBy: "consumer", Policy: "local", FaultTolerant: true}
	if err := plugins.DecodeConfig(raw, &c); err != nil {
		return Config{}, err
	}
	fe := plugins.FieldErrors{}
	switch c.LimitBy {
	case "consumer", "credential", "ip":
	default:
		fe["limit_by"] = "expected one of: consumer, credential, ip"
	}
	if c.Policy != "local" {
		fe["policy"] = "expected one of: local"
	}
	var prev *float64
	prevName, any := "", false
	for i, l := range c.limits() {
		name := periodNames[i]
		if l == nil {
			continue
		}
		any = true
		if *l <= 0 || *l != float64(int64(*l)) {
			fe[name] = "value must be a positive integer"
			continue
		}
		if prev != nil && *l < *prev {
			fe["@entity"] = fmt.Sprintf("The limit for %s(%g) cannot be lower than the limit for %s(%g)", name, *l, prevName, *prev)
		}
		prev, prevName = l, name
	}
	if !any {
		fe["@entity"] = "at least one of these fields must be non-empty: 'config.second', 'config.minute', 'config.hour', 'config.day'"
	}
	if len(fe) > 0 {
		return Config{}, fe
	}
	return c, nil
}

var periodNames = [numPeriods]string{"second", "minute", "hour", "day"}
