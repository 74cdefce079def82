// Command argocd-diff compares a desired manifest with the live object the way Argo CD's
// application controller does, with the diff package of github.com/argoproj/gitops-engine:
// a three-way diff against kubectl's last-applied-configuration when the live object has one
// (Argo CD's default client-side apply), else a two-way diff, after the engine's own
// normalization. It prints one JSON object and exits 0 when the object is in sync, 1 when it
// is OutOfSync, 2 on bad input.
//
//	argocd-diff [-ignore-status] DESIRED.json LIVE.json
//
// -ignore-status also drops .status from both sides, as Argo CD's
// resource.compareoptions ignoreResourceStatusField does; without it the comparison is the
// stricter one (status counts wherever the desired manifest or last-applied names it).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/argoproj/gitops-engine/pkg/diff"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

type statusNormalizer struct{ drop bool }

func (n statusNormalizer) Normalize(un *unstructured.Unstructured) error {
	if n.drop && un != nil {
		unstructured.RemoveNestedField(un.Object, "status")
	}
	return nil
}

func load(path string) (*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

type result struct {
	Modified       bool   `json:"modified"`
	Mode           string `json:"mode"`
	PredictedLive  any    `json:"predictedLive"`
	NormalizedLive any    `json:"normalizedLive"`
}

func main() {
	ignoreStatus := flag.Bool("ignore-status", false, "drop .status before comparing")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-diff [-ignore-status] DESIRED.json LIVE.json")
		os.Exit(2)
	}
	config, err := load(flag.Arg(0))
	if err == nil {
		var live *unstructured.Unstructured
		live, err = load(flag.Arg(1))
		if err == nil {
			mode := "two-way"
			if orig, _ := diff.GetLastAppliedConfigAnnotation(live); orig != nil {
				mode = "three-way"
			}
			var res *diff.DiffResult
			res, err = diff.Diff(config, live, diff.WithNormalizer(statusNormalizer{*ignoreStatus}))
			if err == nil {
				out := result{Modified: res.Modified, Mode: mode}
				_ = json.Unmarshal(res.PredictedLive, &out.PredictedLive)
				_ = json.Unmarshal(res.NormalizedLive, &out.NormalizedLive)
				_ = json.NewEncoder(os.Stdout).Encode(out)
				if res.Modified {
					os.Exit(1)
				}
				return
			}
		}
	}
	fmt.Fprintln(os.Stderr, "argocd-diff:", err)
	os.Exit(2)
}
