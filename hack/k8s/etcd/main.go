// Command etcd is the etcd server built from go.etcd.io/etcd/server/v3 (whose own go.mod has
// replace directives, so it cannot be installed with `go install pkg@version`).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
