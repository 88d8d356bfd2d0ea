// Package components registers the Dapr components Agentia ships, and only those.
//
// The Dapr build replaces upstream's cmd/daprd/components placeholder file (the one built
// when neither the "allcomponents" nor the "stablecomponents" tag is set) with this file
// through `go build -overlay`, so daprd is built from the unmodified upstream module with
// a curated registry: a fraction of the build time and binary size of all 200+ components.
package components

import (
	"context"

	"github.com/dapr/components-contrib/bindings/cron"
	bindingsredis "github.com/dapr/components-contrib/bindings/redis"
	"github.com/dapr/components-contrib/conversation/echo"
	"github.com/dapr/components-contrib/lock/redis"
	contribmiddleware "github.com/dapr/components-contrib/middleware"
	"github.com/dapr/components-contrib/middleware/http/bearer"
	"github.com/dapr/components-contrib/middleware/http/ratelimit"
	"github.com/dapr/components-contrib/nameresolution/mdns"
	nrsqlite "github.com/dapr/components-contrib/nameresolution/sqlite"
	pubsubinmemory "github.com/dapr/components-contrib/pubsub/in-memory"
	"github.com/dapr/components-contrib/pubsub/rabbitmq"
	pubsubredis "github.com/dapr/components-contrib/pubsub/redis"
	"github.com/dapr/components-contrib/secretstores/local/env"
	"github.com/dapr/components-contrib/secretstores/local/file"
	stateinmemory "github.com/dapr/components-contrib/state/in-memory"
	pgv1 "github.com/dapr/components-contrib/state/postgresql/v1"
	pgv2 "github.com/dapr/components-contrib/state/postgresql/v2"
	stateredis "github.com/dapr/components-contrib/state/redis"
	statesqlite "github.com/dapr/components-contrib/state/sqlite"
	"github.com/dapr/dapr/pkg/components"
	bindingsLoader "github.com/dapr/dapr/pkg/components/bindings"
	"github.com/dapr/dapr/pkg/components/conversation"
	lockLoader "github.com/dapr/dapr/pkg/components/lock"
	httpMiddlewareLoader "github.com/dapr/dapr/pkg/components/middleware/http"
	nrLoader "github.com/dapr/dapr/pkg/components/nameresolution"
	pubsubLoader "github.com/dapr/dapr/pkg/components/pubsub"
	secretstoresLoader "github.com/dapr/dapr/pkg/components/secretstores"
	stateLoader "github.com/dapr/dapr/pkg/components/state"
	"github.com/dapr/dapr/pkg/middleware"
	"github.com/dapr/kit/logger"
)

func init() {
	// Pub/sub: RabbitMQ is the mesh's broker; Redis streams and in-memory for small setups and tests.
	pubsubLoader.DefaultRegistry.RegisterComponent(rabbitmq.NewRabbitMQ, "rabbitmq")
	pubsubLoader.DefaultRegistry.RegisterComponent(pubsubredis.NewRedisStreams, "redis")
	pubsubLoader.DefaultRegistry.RegisterComponent(pubsubinmemory.New, "in-memory")

	// State: PostgreSQL (also the actor/workflow store), Redis, SQLite, in-memory.
	pg := components.Versioning{
		Preferred: components.VersionConstructor{Version: "v2", Constructor: pgv2.NewPostgreSQLStateStore},
		Others:    []components.VersionConstructor{{Version: "v1", Constructor: pgv1.NewPostgreSQLStateStore}},
		Default:   "v1",
	}
	stateLoader.DefaultRegistry.RegisterComponentWithVersions("postgresql", pg)
	stateLoader.DefaultRegistry.RegisterComponentWithVersions("postgres", pg)
	stateLoader.DefaultRegistry.RegisterComponent(stateredis.NewRedisStateStore, "redis")
	stateLoader.DefaultRegistry.RegisterComponent(statesqlite.NewSQLiteStateStore, "sqlite", "sqlite3")
	stateLoader.DefaultRegistry.RegisterComponent(stateinmemory.NewInMemoryStateStore, "in-memory")

	bindingsLoader.DefaultRegistry.RegisterInputBinding(cron.NewCron, "cron")
	// Redis output binding: atomic counters (INCR with a TTL) for the gateway's rate limits.
	bindingsLoader.DefaultRegistry.RegisterOutputBinding(bindingsredis.NewRedis, "redis")

	secretstoresLoader.DefaultRegistry.RegisterComponent(env.NewEnvSecretStore, "local.env")
	secretstoresLoader.DefaultRegistry.RegisterComponent(file.NewLocalSecretStore, "local.file")

	lockLoader.DefaultRegistry.RegisterComponent(redis.NewStandaloneRedisLock, "redis")

	// Name resolution: SQLite for the sidecars of one machine (no multicast), mDNS as Dapr's default.
	nrLoader.DefaultRegistry.RegisterComponent(nrsqlite.NewResolver, "sqlite")
	nrLoader.DefaultRegistry.RegisterComponent(mdns.NewResolver, "mdns")

	httpMiddlewareLoader.DefaultRegistry.RegisterComponent(func(log logger.Logger) httpMiddlewareLoader.FactoryMethod {
		return func(metadata contribmiddleware.Metadata) (middleware.HTTP, error) {
			return bearer.NewBearerMiddleware(log).GetHandler(context.TODO(), metadata)
		}
	}, "bearer")
	httpMiddlewareLoader.DefaultRegistry.RegisterComponent(func(log logger.Logger) httpMiddlewareLoader.FactoryMethod {
		return func(metadata contribmiddleware.Metadata) (middleware.HTTP, error) {
			return ratelimit.NewRateLimitMiddleware(log).GetHandler(context.TODO(), metadata)
		}
	}, "ratelimit")

	conversation.DefaultRegistry.RegisterComponent(echo.NewEcho, "echo")
}
