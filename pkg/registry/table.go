package registry

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apiserver/pkg/registry/rest"
)

var metadataDescriptions = metav1.ObjectMeta{}.SwaggerDoc()

// Column is one printer column between NAME and AGE.
type Column struct {
	Name        string // upper-cased by kubectl: "Snapshot-Time" prints SNAPSHOT-TIME
	Type        string // string, integer, number, boolean or date
	Description string
	Priority    int32
}

// TableConvertor prints a catalog resource as kubectl shows it: NAME, the
// resource's columns, AGE. It is what upstream's CRD printer columns give.
type TableConvertor struct {
	Resource schema.GroupResource
	Columns  []Column
	// Cells returns the cells of Columns for one object.
	Cells func(obj runtime.Object) ([]any, error)
}

var _ rest.TableConvertor = TableConvertor{}

// ConvertToTable implements rest.TableConvertor.
func (c TableConvertor) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	table := &metav1.Table{}
	row := func(obj runtime.Object) error {
		m, err := meta.Accessor(obj)
		if err != nil {
			return notAcceptable{c.Resource}
		}
		cells, err := c.Cells(obj)
		if err != nil {
			return err
		}
		all := make([]any, 0, len(cells)+2)
		all = append(all, m.GetName())
		all = append(all, cells...)
		all = append(all, Age(m.GetCreationTimestamp()))
		table.Rows = append(table.Rows, metav1.TableRow{Cells: all, Object: runtime.RawExtension{Object: obj}})
		return nil
	}
	if meta.IsListType(object) {
		if err := meta.EachListItem(object, row); err != nil {
			return nil, err
		}
	} else if err := row(object); err != nil {
		return nil, err
	}
	if m, err := meta.ListAccessor(object); err == nil {
		table.ResourceVersion = m.GetResourceVersion()
		table.Continue = m.GetContinue()
		table.RemainingItemCount = m.GetRemainingItemCount()
	} else if m, err := meta.CommonAccessor(object); err == nil {
		table.ResourceVersion = m.GetResourceVersion()
	}
	if opt, ok := tableOptions.(*metav1.TableOptions); !ok || !opt.NoHeaders {
		defs := []metav1.TableColumnDefinition{{Name: "Name", Type: "string", Format: "name", Description: metadataDescriptions["name"]}}
		for _, col := range c.Columns {
			defs = append(defs, metav1.TableColumnDefinition{Name: col.Name, Type: col.Type, Description: col.Description, Priority: col.Priority})
		}
		defs = append(defs, metav1.TableColumnDefinition{Name: "Age", Type: "date", Description: metadataDescriptions["creationTimestamp"]})
		table.ColumnDefinitions = defs
	}
	return table, nil
}

// Age prints a timestamp as kubectl's AGE column: "5m", "<unknown>" when unset.
func Age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

// Cells of missing values are nil, which kubectl prints empty, as with the
// printer columns of a CRD.

// Since prints a date column as CRD printer columns of type date do: the
// time since ("103s"); nil when unset.
func Since(t *metav1.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return duration.HumanDuration(time.Since(t.Time))
}

// Timestamp prints a time as RFC 3339 (upstream's Snapshot-Time is a string
// column); nil when unset.
func Timestamp(t *metav1.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// Bool is an optional boolean cell.
func Bool(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

// Int32 is an optional integer cell.
func Int32(i *int32) any {
	if i == nil {
		return nil
	}
	return int64(*i)
}

// notAcceptable is what the default convertor returns for objects without
// metadata.
type notAcceptable struct{ resource schema.GroupResource }

func (e notAcceptable) Error() string {
	return fmt.Sprintf("the resource %s does not support being converted to a Table", e.resource)
}

func (e notAcceptable) Status() metav1.Status {
	return metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotAcceptable, Reason: "NotAcceptable", Message: e.Error()}
}
