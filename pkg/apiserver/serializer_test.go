package apiserver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestNegotiatedSerializerHasNoProtobuf(t *testing.T) {
	var types []string
	for _, info := range NegotiatedSerializer.SupportedMediaTypes() {
		types = append(types, info.MediaType)
	}
	assert.Contains(t, types, runtime.ContentTypeJSON)
	assert.Contains(t, types, runtime.ContentTypeYAML)
	assert.NotContains(t, types, runtime.ContentTypeProtobuf)
}
