// The Dapr components the cluster needs on top of the local curated set
// (runtime/dapr/curated/components.go): on Kubernetes, daprd resolves app ids through
// the cluster's DNS and the `secrets` store reads Kubernetes Secrets.
package components

import (
	k8sresolver "github.com/dapr/components-contrib/nameresolution/kubernetes"
	k8ssecrets "github.com/dapr/components-contrib/secretstores/kubernetes"
	nrLoader "github.com/dapr/dapr/pkg/components/nameresolution"
	secretstoresLoader "github.com/dapr/dapr/pkg/components/secretstores"
)

func init() {
	nrLoader.DefaultRegistry.RegisterComponent(k8sresolver.NewResolver, "kubernetes")
	secretstoresLoader.DefaultRegistry.RegisterComponent(k8ssecrets.NewKubernetesSecretStore, "kubernetes")
}
