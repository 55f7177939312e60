// Command kstatus-check classifies Kubernetes objects with kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status),
// the library Flux, kpt and Config Sync use to tell whether a resource is Current, InProgress or Failed.
//
// Input on stdin: a JSON array of objects (as `kubectl get -o json` writes them). Output on stdout: a JSON
// array with, for each object in order, its kind, namespace, name, kstatus status and message.
// `kstatus-check --version` prints the cli-utils version it was built with.
//
// Built from Go modules by e2e/cluster/gscluster/build.py (`make cluster-build`), cached beside the
// Kubernetes binaries; tests/gitops runs it on the statuses the operator writes.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// cliUtilsVersion is set at build time (-ldflags -X main.cliUtilsVersion=...).
var cliUtilsVersion = "unknown"

type result struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println(cliUtilsVersion)
		return
	}
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kstatus-check: reading stdin: %v\n", err)
		os.Exit(2)
	}
	// Kubernetes' JSON decoding: whole numbers become int64, as kstatus' accessors expect.
	var objects []interface{}
	if err := utiljson.Unmarshal(data, &objects); err != nil {
		fmt.Fprintf(os.Stderr, "kstatus-check: stdin is not a JSON array of objects: %v\n", err)
		os.Exit(2)
	}
	results := make([]result, 0, len(objects))
	for index, object := range objects {
		content, ok := object.(map[string]interface{})
		if !ok {
			fmt.Fprintf(os.Stderr, "kstatus-check: item %d is not an object\n", index)
			os.Exit(2)
		}
		u := &unstructured.Unstructured{Object: content}
		res, err := status.Compute(u)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus-check: %s %s: %v\n", u.GetKind(), u.GetName(), err)
			os.Exit(1)
		}
		results = append(results, result{
			Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(),
			Status: string(res.Status), Message: res.Message,
		})
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(results); err != nil {
		fmt.Fprintf(os.Stderr, "kstatus-check: writing results: %v\n", err)
		os.Exit(1)
	}
}
