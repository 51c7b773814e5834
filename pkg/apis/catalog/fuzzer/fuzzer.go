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

// Package fuzzer fills internal catalog objects with random but valid
// values for the round-trip test: enums hold one of their values and
// defaulted fields are set, so decoding (which applies defaults) gives the
// same object back.
package fuzzer

import (
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	runtimeserializer "k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/randfill"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
)

// Funcs returns the fuzzer functions for the catalog API group.
var Funcs = func(codecs runtimeserializer.CodecFactory) []interface{} {
	return []interface{}{
		func(s *catalog.RepositorySpec, c randfill.Continue) {
			c.FillNoCustom(s)
			s.DeletionPolicy = oneOf(c, catalog.DeletionPolicyDelete, catalog.DeletionPolicyWipeOut)
		},
		func(s *catalog.RepositoryStatus, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Phase = oneOf(c, "", catalog.RepositoryNotReady, catalog.RepositoryReady)
		},
		func(s *catalog.SnapshotInfo, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Phase = snapshotPhase(c)
		},
		func(s *catalog.SnapshotSpec, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Type = oneOf(c, "", catalog.BackupTypeFull, catalog.BackupTypeIncremental)
			s.DeletionPolicy = oneOf(c, catalog.DeletionPolicyDelete, catalog.DeletionPolicyWipeOut)
			// Defaulted to "v1" when empty.
			s.Version = "v1"
		},
		func(s *catalog.SnapshotStatus, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Phase = snapshotPhase(c)
			s.VerificationStatus = oneOf(c, "", catalog.SnapshotVerified, catalog.SnapshotNotVerified, catalog.SnapshotVerificationFailed)
		},
		func(s *catalog.Component, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Phase = oneOf(c, "", catalog.ComponentPhasePending, catalog.ComponentPhaseRunning, catalog.ComponentPhaseSucceeded, catalog.ComponentPhaseFailed)
			s.Driver = oneOf(c, "", catalog.DriverRestic, catalog.DriverVolumeSnapshotter)
			s.Duration = duration(c).String()
		},
		func(s *catalog.BackupSessionSpec, c randfill.Continue) {
			c.FillNoCustom(s)
			if c.Bool() {
				s.BackupTimeout = &metav1.Duration{Duration: duration(c)}
			}
		},
		func(s *catalog.BackupSessionStatus, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Phase = oneOf(c, "", catalog.BackupSessionPending, catalog.BackupSessionRunning, catalog.BackupSessionSucceeded, catalog.BackupSessionFailed, catalog.BackupSessionSkipped)
			s.Duration = duration(c).String()
		},
		func(s *catalog.BackupSessionSnapshotStatus, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Phase = snapshotPhase(c)
		},
		func(s *catalog.HookExecutionStatus, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Phase = oneOf(c, "", catalog.HookExecutionPending, catalog.HookExecutionSucceeded, catalog.HookExecutionFailed)
		},
		func(s *catalog.RetentionPolicyApplyStatus, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Phase = oneOf(c, "", catalog.RetentionPolicyPending, catalog.RetentionPolicyApplied, catalog.RetentionPolicyFailedToApply)
		},
		func(s *catalog.RestoreSessionSpec, c randfill.Continue) {
			// Field by field: addon and hooks are core.kubestash.com types
			// (pod templates, volumes, raw params) whose random values do
			// not round-trip; they get small valid values instead.
			c.Fill(&s.Target)
			c.Fill(&s.DataSource)
			s.RestoreTimeout = nil
			if c.Bool() {
				s.RestoreTimeout = &metav1.Duration{Duration: duration(c)}
			}
			s.Addon = nil
			if c.Bool() {
				s.Addon = &corev1alpha1.AddonInfo{
					Name: c.String(0),
					Tasks: []corev1alpha1.TaskReference{{
						Name:      c.String(0),
						Variables: envVars(c),
						Params:    rawParams(c),
					}},
				}
			}
			s.Hooks = nil
			if c.Bool() {
				s.Hooks = &catalog.RestoreHooks{PreRestore: hooks(c), PostRestore: hooks(c)}
			}
		},
		func(s *catalog.RestoreSessionStatus, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Phase = restorePhase(c)
			s.Duration = duration(c).String()
		},
		func(s *catalog.RestoreComponent, c randfill.Continue) {
			c.FillNoCustom(s)
			s.Phase = restorePhase(c)
			s.Duration = duration(c).String()
		},
	}
}

func oneOf[T any](c randfill.Continue, values ...T) T {
	return values[c.Intn(len(values))]
}

func snapshotPhase(c randfill.Continue) catalog.SnapshotPhase {
	return oneOf(c, "", catalog.SnapshotPending, catalog.SnapshotRunning, catalog.SnapshotSucceeded, catalog.SnapshotFailed)
}

func restorePhase(c randfill.Continue) catalog.RestorePhase {
	return oneOf(c, "", catalog.RestorePending, catalog.RestoreRunning, catalog.RestoreFailed, catalog.RestoreSucceeded, catalog.RestoreInvalid, catalog.RestorePhaseUnknown)
}

func envVars(c randfill.Continue) []corev1.EnvVar {
	var out []corev1.EnvVar
	for i := c.Intn(3); i > 0; i-- {
		out = append(out, corev1.EnvVar{Name: c.String(0), Value: c.String(0)})
	}
	return out
}

// rawParams is free-form JSON as a user writes it; compact, as the encoder
// would make it.
func rawParams(c randfill.Continue) *runtime.RawExtension {
	if c.Bool() {
		return nil
	}
	b, err := json.Marshal(map[string]string{c.String(0): c.String(0)})
	if err != nil {
		panic(err)
	}
	return &runtime.RawExtension{Raw: b}
}

func hooks(c randfill.Continue) []corev1alpha1.HookInfo {
	var out []corev1alpha1.HookInfo
	for i := c.Intn(3); i > 0; i-- {
		h := corev1alpha1.HookInfo{
			Name:     c.String(0),
			Params:   rawParams(c),
			MaxRetry: c.Int31(),
			// Defaulted to Always when empty.
			ExecutionPolicy: oneOf(c, corev1alpha1.ExecuteAlways, corev1alpha1.ExecuteOnSuccess, corev1alpha1.ExecuteOnFailure),
			Variables:       envVars(c),
		}
		c.Fill(&h.HookTemplate)
		if c.Bool() {
			h.Timeout = &metav1.Duration{Duration: duration(c)}
		}
		out = append(out, h)
	}
	return out
}

// duration is a realistic backup or restore duration (up to a day).
func duration(c randfill.Continue) time.Duration {
	return time.Duration(c.Int63n(int64(24 * time.Hour)))
}
