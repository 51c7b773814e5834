package layout

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
)

// upstreamGroups are where upstream KubeStash keeps the catalog kinds; their
// files in a bucket are read as catalog.kubestash.com/v1alpha1.
var upstreamAPIVersions = map[string]map[string]bool{
	"storage.kubestash.com/v1alpha1": {"Repository": true, "Snapshot": true},
	"core.kubestash.com/v1alpha1":    {"BackupSession": true, "RestoreSession": true},
}

// FileCodec encodes catalog objects as the YAML files of the layout
// (catalog.kubestash.com/v1alpha1) and decodes files of this project and of
// upstream KubeStash, to the internal version.
type FileCodec struct {
	encoder runtime.Encoder
	decoder runtime.Decoder
}

var _ runtime.Codec = &FileCodec{}

// NewFileCodec returns a FileCodec over a scheme that has the catalog group
// installed.
func NewFileCodec(scheme *runtime.Scheme) *FileCodec {
	codecs := serializer.NewCodecFactory(scheme)
	yamlSerializer := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true})
	return &FileCodec{
		encoder: codecs.EncoderForVersion(yamlSerializer, catalogv1alpha1.SchemeGroupVersion),
		decoder: codecs.DecoderToVersion(yamlSerializer, runtime.InternalGroupVersioner),
	}
}

// Encode writes obj as YAML of catalog.kubestash.com/v1alpha1.
func (c *FileCodec) Encode(obj runtime.Object, w io.Writer) error { return c.encoder.Encode(obj, w) }

// Identifier implements runtime.Encoder.
func (c *FileCodec) Identifier() runtime.Identifier { return "kubestash-catalog-file" }

// Decode reads a catalog file, rewriting an upstream apiVersion first.
func (c *FileCodec) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	return c.decoder.Decode(RewriteUpstreamAPIVersion(data), defaults, into)
}

// RewriteUpstreamAPIVersion replaces a top-level upstream apiVersion of a
// catalog kind with catalog.kubestash.com/v1alpha1. It works on the YAML
// text so that the common case (our own files) costs one scan and no parse.
func RewriteUpstreamAPIVersion(data []byte) []byte {
	var apiVersion, kind string
	var avStart, avEnd int
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += off
		}
		line := data[off:end]
		switch {
		case bytes.HasPrefix(line, []byte("apiVersion:")):
			v := bytes.TrimSpace(line[len("apiVersion:"):])
			apiVersion = string(bytes.Trim(v, `"'`))
			avStart, avEnd = off, end
		case bytes.HasPrefix(line, []byte("kind:")):
			kind = string(bytes.Trim(bytes.TrimSpace(line[len("kind:"):]), `"'`))
		}
		off = end + 1
	}
	if !upstreamAPIVersions[apiVersion][kind] {
		return data
	}
	out := make([]byte, 0, len(data)+16)
	out = append(out, data[:avStart]...)
	out = append(out, "apiVersion: "+catalogv1alpha1.SchemeGroupVersion.String()...)
	out = append(out, data[avEnd:]...)
	return out
}

// yamlLine finds the line number a YAML error names (digits only).
var yamlLine = regexp.MustCompile(`line (\d+)`)

// DecodeErrorKind says why a file did not decode without quoting any of it.
// Decoders put the offending text, sometimes the whole input, into their
// messages ("Object 'Kind' is missing in '<the file>'"), and a file in a
// bucket holds whatever anyone put there: another tenant's data read
// through a planted link, secrets, megabytes. Logs and errors about files
// use this, never the decoder's message.
func DecodeErrorKind(err error) string {
	if err == nil {
		return ""
	}
	var syntax *stdjson.SyntaxError
	var typ *stdjson.UnmarshalTypeError
	msg := err.Error()
	switch {
	case runtime.IsMissingKind(err):
		return "no kind"
	case runtime.IsMissingVersion(err):
		return "no apiVersion"
	case runtime.IsNotRegisteredError(err):
		return "not a kind this server knows"
	case errors.As(err, &syntax):
		return fmt.Sprintf("not valid JSON (offset %d)", syntax.Offset)
	case errors.As(err, &typ):
		return "a field has the wrong type"
	case strings.Contains(msg, "yaml:") || strings.Contains(msg, "YAML"):
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			return "not valid YAML (line " + m[1] + ")"
		}
		return "not valid YAML"
	case strings.Contains(msg, "strict decoding error"):
		return "unknown or duplicate fields"
	}
	return "does not decode as a catalog object"
}
