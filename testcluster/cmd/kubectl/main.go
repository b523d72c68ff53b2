// Command kubectl is the upstream kubectl at the test cluster's Kubernetes version.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
)

func main() { os.Exit(cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand())) }
