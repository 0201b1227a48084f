package config

// Typed config values. Each decodes from a TOML string only, through
// toml.Unmarshaler, so a bare number where a unit is meant is refused with a
// hint instead of being silently read as nanoseconds or bytes, and a
// negative value never wraps around.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a non-negative time span written as a Go duration string:
// "250ms", "5s", "1m30s".
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as a duration string, so an encoded Config decodes
// back to the same value.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalTOML implements toml.Unmarshaler.
func (d *Duration) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return wantString("a duration", `"10s"`, v)
	}
	t, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write e.g. \"250ms\", \"10s\" or \"1m30s\"", s)
	}
	if t < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	*d = Duration(t)
	return nil
}

// Bitrate is a rate in bits per second written as a string with an optional
// SI unit: "800k", "3M", "2.5M", "1G", "2500000". 0 ("") means unlimited
// where a field says so.
type Bitrate int64

// MarshalText writes b with the largest unit that keeps it exact.
func (b Bitrate) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

func (b Bitrate) String() string {
	if b == 0 {
		return ""
	}
	return formatUnits(int64(b), []unitDef{{"G", 1e9}, {"M", 1e6}, {"k", 1e3}})
}

var bitrateUnits = []unitDef{{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}}

// UnmarshalTOML implements toml.Unmarshaler.
func (b *Bitrate) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return wantString("a bitrate", `"20M"`, v)
	}
	n, err := parseUnits(s, bitrateUnits, 1e12, `k, M or G (bits/s), e.g. "20M" or "800k"`)
	if err != nil {
		return err
	}
	*b = Bitrate(n)
	return nil
}

// ByteSize is a size in bytes written as a string: "512", "64KiB", "8MiB",
// "1GiB" (powers of 1024) or "64KB", "8MB", "1GB" (powers of 1000).
type ByteSize int64

func (z ByteSize) String() string {
	if z == 0 {
		return "0"
	}
	return formatUnits(int64(z), []unitDef{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}})
}

// MarshalText writes z with the largest binary unit that keeps it exact.
func (z ByteSize) MarshalText() ([]byte, error) { return []byte(z.String()), nil }

var sizeUnits = []unitDef{
	{"B", 1},
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"kB", 1e3},
}

// UnmarshalTOML implements toml.Unmarshaler.
func (z *ByteSize) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return wantString("a size", `"64KiB"`, v)
	}
	n, err := parseUnits(s, sizeUnits, 1<<50, `B, KiB, MiB or GiB, e.g. "64KiB" or "8MiB"`)
	if err != nil {
		return err
	}
	*z = ByteSize(n)
	return nil
}

type unitDef struct {
	name string
	mult float64
}

// parseUnits reads "<decimal number><unit>" with no sign and no exponent.
// "" is 0.
func parseUnits(s string, units []unitDef, max float64, hint string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, nil
	}
	if t[0] == '-' {
		return 0, fmt.Errorf("%q is negative", s)
	}
	i := 0
	dots := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		if t[i] == '.' {
			dots++
		}
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" || dots > 1 || num == "." {
		return 0, fmt.Errorf("%q is not a number with a unit: use %s", s, hint)
	}
	mult := 1.0
	if unit != "" {
		found := false
		for _, u := range units {
			if u.name == unit {
				mult, found = u.mult, true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("%q has unknown unit %q: use %s", s, unit, hint)
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number with a unit: use %s", s, hint)
	}
	v := f * mult
	if v > max || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("%q is too large", s)
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("%q is not a whole number of units: use %s", s, hint)
	}
	return int64(v), nil
}

func formatUnits(n int64, units []unitDef) string {
	for _, u := range units {
		m := int64(u.mult)
		if n >= m && n%m == 0 {
			return strconv.FormatInt(n/m, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// wantString is the error for a non-string where a typed string is meant.
func wantString(what, example string, v any) error {
	switch x := v.(type) {
	case int64:
		return fmt.Errorf("want %s string such as %s, got integer %d", what, example, x)
	case float64:
		return fmt.Errorf("want %s string such as %s, got float %v", what, example, x)
	case bool:
		return fmt.Errorf("want %s string such as %s, got boolean %v", what, example, x)
	default:
		return fmt.Errorf("want %s string such as %s, got %s", what, example, tomlTypeName(v))
	}
}

// tomlTypeName names the TOML type of a decoded value for messages.
func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case []any, []map[string]any:
		return "array"
	case map[string]any:
		return "table"
	case time.Time:
		return "datetime"
	default:
		return fmt.Sprintf("%T", v)
	}
}
