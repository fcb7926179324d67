//go:build tools

// Package tools pins the node and controller commands this wrapper module builds: the real
// node of the `node` test tier (test/node), beside the project's own kube-apiserver build.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
