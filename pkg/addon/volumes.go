package addon

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	addonsv1alpha1 "kubestash.dev/kubestash/pkg/apis/addons/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
)

// UserVolumeSources are the members of a volume source that a user may set
// in addonVolumes (a BackupConfiguration session's or a RestoreSession's
// task): volumes that live in, and are limited by, the user's own
// namespace. volumeClaimTemplate is KubeStash's form of an ephemeral
// volume (a claim made for the Job in that namespace), and ephemeral is
// listed for the day the type carries corev1's own.
//
// Everything else is refused: hostPath, nfs and the other node-level or
// network sources (iscsi, csi, local, flexVolume, cephfs, rbd, glusterfs,
// ...) would let a namespace's user read or write the node or another
// tenant's storage as the Job's user (root for a restore). Those come only
// from an Addon's volumeTemplate, which a cluster admin writes. downwardAPI
// and projected would be harmless (the pod's own metadata and objects of
// its namespace) but the API type cannot carry them, so they are not
// listed. The CEL rule on corev1alpha1.AddonVolumeInfo says the same for
// the BackupConfiguration CRD.
var UserVolumeSources = []string{"persistentVolumeClaim", "emptyDir", "configMap", "secret", "ephemeral", "volumeClaimTemplate"}

// UserVolumeSourceMessage is why a source outside UserVolumeSources is
// refused; the CRD's CEL rule has the same words.
const UserVolumeSourceMessage = "only persistentVolumeClaim, emptyDir, configMap, secret and volumeClaimTemplate (ephemeral) volumes may be set by a user; hostPath, nfs and other node-level sources only come from the Addon's volumeTemplate"

// ValidateAddonVolumes checks the addonVolumes of a task reference; fld is
// their path (spec.addon.tasks[0].addonVolumes). Each source must set
// exactly one member, and that one must be in UserVolumeSources.
func ValidateAddonVolumes(fld *field.Path, vols []corev1alpha1.AddonVolumeInfo) field.ErrorList {
	var errs field.ErrorList
	for i, v := range vols {
		if v.Source == nil {
			continue
		}
		errs = append(errs, validateUserSource(fld.Index(i).Child("source"), v.Source)...)
	}
	return errs
}

func validateUserSource(fld *field.Path, src *addonsv1alpha1.VolumeSource) field.ErrorList {
	members, err := setMembers(src)
	if err != nil {
		return field.ErrorList{field.InternalError(fld, err)}
	}
	var errs field.ErrorList
	switch len(members) {
	case 0:
		errs = append(errs, field.Required(fld, "one of "+strings.Join(UserVolumeSources, ", ")))
	case 1:
	default:
		errs = append(errs, field.Invalid(fld, strings.Join(members, ", "), "must set exactly one volume source"))
	}
	for _, m := range members {
		if !allowedForUser(m) {
			errs = append(errs, field.Forbidden(fld.Child(m), UserVolumeSourceMessage))
		}
	}
	return errs
}

func allowedForUser(member string) bool {
	for _, a := range UserVolumeSources {
		if a == member {
			return true
		}
	}
	return false
}

// setMembers returns the JSON names of the members a volume source sets,
// sorted. It goes through JSON rather than naming fields so that a member
// added to the type later is seen, and refused until it is allowed.
func setMembers(src any) ([]string, error) {
	raw, err := json.Marshal(src)
	if err != nil {
		return nil, fmt.Errorf("encode volume source: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode volume source: %w", err)
	}
	var out []string
	for k, v := range m {
		if string(v) != "null" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// checkBuiltSource checks the source a volume got in the pod once
// parameters were substituted: it must set the same members as the source
// it was built from (tmpl), and, when a user supplied it, only allowed
// ones. Substitution escapes values (expandJSON), so a parameter cannot
// turn a persistentVolumeClaim into a hostPath; this is the check that it
// stays so.
func checkBuiltSource(fld *field.Path, tmpl, built corev1.VolumeSource, byUser bool) error {
	want, err := setMembers(tmpl)
	if err != nil {
		return err
	}
	got, err := setMembers(built)
	if err != nil {
		return err
	}
	if strings.Join(want, ",") != strings.Join(got, ",") {
		return field.Invalid(fld, strings.Join(got, ", "), fmt.Sprintf("parameters changed the volume source from %s", strings.Join(want, ", ")))
	}
	if byUser {
		for _, m := range got {
			if !allowedForUser(m) {
				return field.Forbidden(fld.Child(m), UserVolumeSourceMessage)
			}
		}
	}
	return nil
}
