package kmapi

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ObjectReference points to an object by namespace and name. An empty
// namespace means the namespace of the object that holds the reference.
type ObjectReference struct {
	// Namespace of the referent. Defaults to the namespace of the referrer.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// TypedObjectReference points to an object of any kind, for example a
// PersistentVolumeClaim (apiGroup "", kind PersistentVolumeClaim).
type TypedObjectReference struct {
	// APIGroup of the referent; empty for the core group.
	// +optional
	APIGroup string `json:"apiGroup,omitempty"`
	// Kind of the referent.
	// +optional
	Kind string `json:"kind,omitempty"`
	// Namespace of the referent. Defaults to the namespace of the referrer.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// ConditionSeverity says how bad a False condition is.
// +kubebuilder:validation:Enum=Error;Warning;Info;""
type ConditionSeverity string

const (
	ConditionSeverityError   ConditionSeverity = "Error"
	ConditionSeverityWarning ConditionSeverity = "Warning"
	ConditionSeverityInfo    ConditionSeverity = "Info"
	ConditionSeverityNone    ConditionSeverity = ""
)

// Condition is one observation of an object's state. The shape is the
// kmodules one upstream uses: metav1.Condition plus a severity.
type Condition struct {
	// Type of the condition, for example BackendInitialized.
	Type string `json:"type"`
	// Status of the condition: True, False or Unknown.
	Status metav1.ConditionStatus `json:"status"`
	// ObservedGeneration is the .metadata.generation the condition was set for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Severity of a False condition.
	// +optional
	Severity ConditionSeverity `json:"severity,omitempty"`
	// LastTransitionTime is when the status last changed.
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
	// Reason is a CamelCase word for the last transition.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message is a human readable explanation of the last transition.
	// +optional
	Message string `json:"message,omitempty"`
}
