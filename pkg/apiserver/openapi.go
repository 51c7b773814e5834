package apiserver

import (
	"k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/kube-openapi/pkg/common"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	generatedopenapi "kubestash.dev/kubestash/pkg/generated/openapi"
)

// OpenAPIConfig is the OpenAPI v2 configuration of the server.
func OpenAPIConfig() *common.Config {
	// The generated definitions carry model names (+k8s:openapi-model-package),
	// which the scheme's namer tags with x-kubernetes-group-version-kind.
	c := genericapiserver.DefaultOpenAPIConfig(generatedopenapi.GetOpenAPIDefinitions, openapi.NewDefinitionNamer(Scheme))
	c.Info.Title = "KubeStash catalog"
	c.Info.Version = catalogv1alpha1.SchemeGroupVersion.Version
	return c
}

// OpenAPIV3Config is the OpenAPI v3 configuration of the server, which
// kubectl explain and server-side apply use.
func OpenAPIV3Config() *common.OpenAPIV3Config {
	c := genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions, openapi.NewDefinitionNamer(Scheme))
	c.Info.Title = "KubeStash catalog"
	c.Info.Version = catalogv1alpha1.SchemeGroupVersion.Version
	return c
}
