package restic

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// FormatBytes formats a size the way KubeStash writes sizes into its
// objects: binary units with three decimals ("12.222 MiB", "2.262 KiB"), and
// whole bytes below 1 KiB ("806 B"). A unit is used only when the size is
// strictly greater than it, so exactly 1024 bytes is "1024 B", as upstream.
func FormatBytes(n uint64) string {
	b := float64(n)
	switch {
	case n > 1<<40:
		return fmt.Sprintf("%.3f TiB", b/(1<<40))
	case n > 1<<30:
		return fmt.Sprintf("%.3f GiB", b/(1<<30))
	case n > 1<<20:
		return fmt.Sprintf("%.3f MiB", b/(1<<20))
	case n > 1<<10:
		return fmt.Sprintf("%.3f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}

var binaryUnits = map[string]float64{
	"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

// ParseBytes reads a size written by FormatBytes back into bytes. The
// result is approximate (FormatBytes keeps three decimals); it exists so
// that sizes of several components can be summed.
func ParseBytes(s string) (uint64, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return 0, fmt.Errorf("size %q: want \"<number> <unit>\"", s)
	}
	mult, ok := binaryUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q", s, unit)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("size %q: bad number", s)
	}
	return uint64(math.Round(f * mult)), nil
}

var decimalUnits = []string{"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}

// FormatDecimal formats an amount of data for progress reports the way
// upstream's progress does ("393.9MB", "5.268GB", "12MB"): decimal units,
// four significant digits, no space.
func FormatDecimal(n float64) string {
	i := 0
	for n >= 1000 && i < len(decimalUnits)-1 {
		n /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", n, decimalUnits[i])
}

// FormatSpeed formats a transfer rate in bytes per second ("12MB/s").
func FormatSpeed(bytesPerSecond float64) string {
	return FormatDecimal(bytesPerSecond) + "/s"
}

// FormatPercent formats restic's percent_done (0..1) as "7.48%".
func FormatPercent(fraction float64) string {
	return fmt.Sprintf("%.2f%%", fraction*100)
}
