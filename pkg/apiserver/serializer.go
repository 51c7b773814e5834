package apiserver

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

// NegotiatedSerializer is Codecs without protobuf. The catalog types have
// no protobuf encoding, but the codec factory offers it, so clients that
// prefer it (the namespace controller, the garbage collector, any
// client-go metadata or protobuf client) would get a 500 instead of falling
// back to JSON, and namespace deletion would hang. As for custom resources,
// JSON, YAML (and CBOR where enabled) are served.
var NegotiatedSerializer runtime.NegotiatedSerializer = withoutProtobuf{Codecs}

type withoutProtobuf struct{ serializer.CodecFactory }

func (w withoutProtobuf) SupportedMediaTypes() []runtime.SerializerInfo {
	all := w.CodecFactory.SupportedMediaTypes()
	out := make([]runtime.SerializerInfo, 0, len(all))
	for _, info := range all {
		if info.MediaType != runtime.ContentTypeProtobuf {
			out = append(out, info)
		}
	}
	return out
}
