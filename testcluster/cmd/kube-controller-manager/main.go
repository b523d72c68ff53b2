// Command kube-controller-manager gives the test cluster garbage collection, namespaces,
// Deployments, ReplicaSets, ServiceAccounts and PV binding.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() { os.Exit(cli.Run(app.NewControllerManagerCommand())) }
