package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// field describes one configuration key, read once from Config's tags.
type field struct {
	key     string
	index   int
	def     string
	allowed []string
	secret  bool
}

var fieldsOnce = sync.OnceValue(func() []field {
	t := reflect.TypeFor[Config]()
	out := make([]field, 0, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		key := sf.Tag.Get("conf")
		if key == "" {
			continue
		}
		f := field{key: key, index: i, def: sf.Tag.Get("default"), secret: sf.Tag.Get("secret") == "true"}
		if a := sf.Tag.Get("allowed"); a != "" {
			f.allowed = strings.Split(a, ",")
		}
		out = append(out, f)
	}
	return out
})

var byKeyOnce = sync.OnceValue(func() map[string]field {
	m := make(map[string]field)
	for _, f := range fieldsOnce() {
		m[f.key] = f
	}
	return m
})

func fields() []field              { return fieldsOnce() }
func fieldByKey() map[string]field { return byKeyOnce() }

// set parses value into f's field of c.
func (f field) set(c *Config, value string) error {
	if f.allowed != nil && !slices.Contains(f.allowed, value) {
		return fmt.Errorf("allowed values: %s", strings.Join(f.allowed, ", "))
	}
	v := reflect.ValueOf(c).Elem().Field(f.index)
	switch v.Interface().(type) {
	case string:
		v.SetString(value)
	case int:
		n, err := strconv.Atoi(value)
		if err != nil {
			return errors.New("expected an integer")
		}
		v.SetInt(int64(n))
	case bool:
		b, err := parseBool(value)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case time.Duration:
		d, err := parseDuration(value)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case OptDuration:
		if value == "" || value == "none" || value == "NONE" {
			v.Set(reflect.ValueOf(OptDuration{}))
			return nil
		}
		d, err := parseDuration(value)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(OptDuration{D: d, Set: true}))
	case Size:
		s, err := parseSize(value)
		if err != nil {
			return err
		}
		v.SetInt(int64(s))
	case []string:
		var list []string
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		panic("config: unsupported field type for " + f.key) // programmer error
	}
	return nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, errors.New("allowed values: on, off")
}

// parseDuration accepts seconds as a number (Kong: "5", "0.5") or a Go
// duration ("500ms", "1m").
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > 1e9 {
			return 0, errors.New("expected seconds between 0 and 1e9")
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New(`expected seconds ("5", "0.5") or a duration ("500ms", "2s")`)
	}
	if d < 0 {
		return 0, errors.New("expected a duration of 0 or more")
	}
	return d, nil
}

// parseSize accepts "128m", "1g", "512k" or a number of bytes.
func parseSize(s string) (Size, error) {
	mult := int64(1)
	num := strings.ToLower(strings.TrimSpace(s))
	switch {
	case strings.HasSuffix(num, "k"):
		mult, num = 1<<10, num[:len(num)-1]
	case strings.HasSuffix(num, "m"):
		mult, num = 1<<20, num[:len(num)-1]
	case strings.HasSuffix(num, "g"):
		mult, num = 1<<30, num[:len(num)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New(`expected a size such as "128m", "1g" or "512k"`)
	}
	return Size(n * mult), nil
}
