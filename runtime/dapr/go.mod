// The Dapr runtime Agentia runs, built from the upstream Go module (see README.md).
// The replace lines repeat dapr's own: a module that requires dapr must carry them.
module agentia.dev/daprbuild

go 1.26.4

require github.com/dapr/dapr v1.18.0

replace (
	dubbo.apache.org/dubbo-go/v3 => dubbo.apache.org/dubbo-go/v3 v3.0.3-0.20230118042253-4f159a2b38f3
	gopkg.in/couchbaselabs/gocbconnstr.v1 => github.com/couchbaselabs/gocbconnstr v1.0.5
)
replace (
	github.com/chenzhuoyu/iasm => github.com/chenzhuoyu/iasm v0.9.0
	github.com/chzyer/logex => github.com/chzyer/logex v1.2.1
	github.com/gobwas/pool => github.com/gobwas/pool v0.2.1
	github.com/toolkits/concurrent => github.com/niean/gotools v0.0.0-20151221085310-ff3f51fc5c60
)

// Not dapr's: v0.12.5 (what dapr v1.18.0 asks for) is not served by the module proxy this
// project builds from; v0.12.6 is the next patch release, with the same API.
replace github.com/diagridio/go-etcd-cron => github.com/diagridio/go-etcd-cron v0.12.6

