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
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMaxRetentionPeriod(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "30m", want: 30 * time.Minute},
		{in: "12h", want: 12 * time.Hour},
		{in: "30d", want: 30 * day},
		{in: "1w", want: 7 * day},
		{in: "2mo", want: 60 * day},
		{in: "1y", want: 365 * day},
		{in: "30d12h30m", want: 30*day + 12*time.Hour + 30*time.Minute},
		{in: "1y2mo3w4d5h6m", want: 365*day + 60*day + 21*day + 4*day + 5*time.Hour + 6*time.Minute},
		{in: "0m", want: 0},
		{in: "", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "30", wantErr: true},
		{in: "30s", wantErr: true},
		{in: "1d1y", wantErr: true},
		{in: "1d1d", wantErr: true},
		{in: " 1d", wantErr: true},
		{in: "-1d", wantErr: true},
		{in: "1.5d", wantErr: true},
		{in: "99999999999y", wantErr: true},
		{in: "99999999999999999999m", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMaxRetentionPeriod(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), `"`+tc.in+`"`)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			// The method on the field type agrees with the function.
			d, err := RetentionPeriod(tc.in).Duration()
			require.NoError(t, err)
			assert.Equal(t, tc.want, d)
		})
	}
}
