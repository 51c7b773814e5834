package apiserver

import (
	"strings"

	"k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	generatedopenapi "kubestash.dev/kubestash/pkg/generated/openapi"
)

// DefinitionName names the OpenAPI definitions by their model name
// ("dev.kubestash.kubestash.pkg.apis.catalog.v1alpha1.Snapshot") and tags
// those of the scheme's kinds with x-kubernetes-group-version-kind, which
// kubectl explain and server-side apply need.
//
// The k8s.io types have OpenAPIModelName methods, so their definitions are
// keyed by model name already; this project's types are generated without
// them and keyed by Go package path, while the scheme knows them by model
// name. This maps the former to the latter. Once the API packages carry
// +k8s:openapi-model-package and the generator writes model names, it is
// the plain DefinitionNamer.
func DefinitionName(namer *openapi.DefinitionNamer) func(name string) (string, spec.Extensions) {
	return func(name string) (string, spec.Extensions) {
		return namer.GetDefinitionName(ModelName(name))
	}
}

// ModelName turns a Go type name ("kubestash.dev/kubestash/pkg/apis/x.T")
// into its OpenAPI model name ("dev.kubestash.kubestash.pkg.apis.x.T"), as
// runtime.Scheme.ToOpenAPIDefinitionName does; model names pass unchanged.
func ModelName(name string) string {
	if !strings.Contains(name, "/") {
		return name
	}
	parts := strings.Split(name, "/")
	if strings.Contains(parts[0], ".") {
		host := strings.Split(parts[0], ".")
		for i, j := 0, len(host)-1; i < j; i, j = i+1, j-1 {
			host[i], host[j] = host[j], host[i]
		}
		parts[0] = strings.Join(host, ".")
	}
	return strings.Join(parts, ".")
}

// OpenAPIConfig is the OpenAPI v2 configuration of the server.
func OpenAPIConfig() *common.Config {
	namer := openapi.NewDefinitionNamer(Scheme)
	c := genericapiserver.DefaultOpenAPIConfig(generatedopenapi.GetOpenAPIDefinitions, namer)
	c.GetDefinitionName = DefinitionName(namer)
	c.Info.Title = "KubeStash catalog"
	c.Info.Version = catalogv1alpha1.SchemeGroupVersion.Version
	return c
}

// OpenAPIV3Config is the OpenAPI v3 configuration of the server, which
// kubectl explain and server-side apply use.
func OpenAPIV3Config() *common.OpenAPIV3Config {
	namer := openapi.NewDefinitionNamer(Scheme)
	c := genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions, namer)
	c.GetDefinitionName = DefinitionName(namer)
	// The default made the definitions with the default names: again, so
	// that references use the same names as the definitions.
	c.Definitions = c.GetDefinitions(func(name string) spec.Ref {
		defName, _ := c.GetDefinitionName(name)
		return spec.MustCreateRef("#/components/schemas/" + common.EscapeJsonPointer(defName))
	})
	c.Info.Title = "KubeStash catalog"
	c.Info.Version = catalogv1alpha1.SchemeGroupVersion.Version
	return c
}
