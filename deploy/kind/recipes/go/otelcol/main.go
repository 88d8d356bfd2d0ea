// The OpenTelemetry Collector for the kind cluster's `otel-collector` component
// (deploy/kind/components/otel-collector), where otel/opentelemetry-collector cannot be
// pulled: the core distribution's version with only what collector.yaml configures (OTLP
// in; memory_limiter and batch; debug out), configuration from files, env or YAML.
package main

import (
	"log"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
)

const version = "0.115.0"

func components() (otelcol.Factories, error) {
	var err error
	f := otelcol.Factories{}
	if f.Extensions, err = extension.MakeFactoryMap(); err != nil {
		return f, err
	}
	if f.Receivers, err = receiver.MakeFactoryMap(otlpreceiver.NewFactory()); err != nil {
		return f, err
	}
	f.Processors, err = processor.MakeFactoryMap(
		batchprocessor.NewFactory(), memorylimiterprocessor.NewFactory())
	if err != nil {
		return f, err
	}
	if f.Exporters, err = exporter.MakeFactoryMap(debugexporter.NewFactory()); err != nil {
		return f, err
	}
	f.Connectors, err = connector.MakeFactoryMap()
	return f, err
}

func main() {
	settings := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol",
			Description: "OpenTelemetry Collector (Agentia's kind build)",
			Version:     version,
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(), fileprovider.NewFactory(), yamlprovider.NewFactory(),
				},
			},
		},
	}
	if err := otelcol.NewCommand(settings).Execute(); err != nil {
		log.Fatalf("collector finished with an error: %v", err)
	}
}
