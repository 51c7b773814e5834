/*
Copyright The KubeStash Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
)

// retentionPeriodRE is the CRD pattern of RetentionPeriod, with groups, so
// the helper and the schema accept exactly the same strings.
var retentionPeriodRE = regexp.MustCompile(`^(?:([0-9]+)y)?(?:([0-9]+)mo)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?$`)

// Units of the groups of retentionPeriodRE, in order.
var retentionPeriodUnits = [...]time.Duration{
	365 * 24 * time.Hour, // y
	30 * 24 * time.Hour,  // mo
	7 * 24 * time.Hour,   // w
	24 * time.Hour,       // d
	time.Hour,            // h
	time.Minute,          // m
}

// ParseMaxRetentionPeriod parses a RetentionPolicy maxRetentionPeriod such as
// "30d12h30m" or "2mo" (y = 365d, mo = 30d, w = 7d). An empty, malformed or
// overflowing value is an error that names the value.
func ParseMaxRetentionPeriod(s string) (time.Duration, error) {
	m := retentionPeriodRE.FindStringSubmatch(s)
	if s == "" || m == nil {
		return 0, fmt.Errorf("invalid maxRetentionPeriod %q: want <n>y<n>mo<n>w<n>d<n>h<n>m with at least one part, in that order", s)
	}
	var total time.Duration
	for i, unit := range retentionPeriodUnits {
		g := m[i+1]
		if g == "" {
			continue
		}
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil || n > int64(math.MaxInt64/unit) || total > math.MaxInt64-time.Duration(n)*unit {
			return 0, fmt.Errorf("invalid maxRetentionPeriod %q: too large", s)
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}

// Duration returns the period as a time.Duration; see ParseMaxRetentionPeriod.
func (r RetentionPeriod) Duration() (time.Duration, error) {
	return ParseMaxRetentionPeriod(string(r))
}
