package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// A check is one <group>/<kind>/ directory of Argo CD's resource_customizations layout.
type check struct {
	dir   string // the directory holding health.lua, health_test.yaml and testdata/
	group string
	kind  string
}

type testFile struct {
	Tests []testCase `json:"tests"`
}

type testCase struct {
	InputPath    string       `json:"inputPath"`
	HealthStatus HealthStatus `json:"healthStatus"`
}

// Result of one test case under one set of libraries.
type Result struct {
	Name      string
	Libraries Libraries
	Want      HealthStatus
	Got       HealthStatus
	Err       error
}

// Passed is true when the script ran and returned exactly the expected status and message.
func (r Result) Passed() bool { return r.Err == nil && r.Got == r.Want }

// findChecks lists every directory under root that holds a health.lua, sorted.
func findChecks(root string) ([]check, error) {
	var checks []check
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if entry.IsDir() || entry.Name() != "health.lua" {
			return nil
		}
		dir := filepath.Dir(path)
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 2 {
			return fmt.Errorf("%s: a health check lives in <group>/<kind>/health.lua under %s", path, root)
		}
		checks = append(checks, check{dir: dir, group: parts[0], kind: parts[1]})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(checks) == 0 {
		return nil, fmt.Errorf("no <group>/<kind>/health.lua under %s", root)
	}
	sort.Slice(checks, func(i, j int) bool { return checks[i].dir < checks[j].dir })
	return checks, nil
}

// runCheck runs every case of one check's health_test.yaml under both library settings.
func runCheck(c check) ([]Result, error) {
	script, err := os.ReadFile(filepath.Join(c.dir, "health.lua"))
	if err != nil {
		return nil, err
	}
	cases, err := readCases(c)
	if err != nil {
		return nil, err
	}
	var results []Result
	for _, tc := range cases {
		object, err := readObject(filepath.Join(c.dir, tc.InputPath))
		if err != nil {
			return nil, err
		}
		if err := matchesCheck(object, c); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(c.dir, tc.InputPath), err)
		}
		for _, libs := range []Libraries{Restricted, Open} {
			got, err := Evaluate(string(script), object, libs, ScriptTimeout)
			results = append(results, Result{
				Name:      c.group + "/" + c.kind + "/" + tc.InputPath,
				Libraries: libs,
				Want:      tc.HealthStatus,
				Got:       got,
				Err:       err,
			})
		}
	}
	return results, nil
}

// readCases reads health_test.yaml strictly and checks that it covers every testdata file.
func readCases(c check) ([]testCase, error) {
	path := filepath.Join(c.dir, "health_test.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("every health.lua needs a health_test.yaml: %w", err)
	}
	var file testFile
	if err := yaml.UnmarshalStrict(raw, &file); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(file.Tests) == 0 {
		return nil, fmt.Errorf("%s: no tests", path)
	}
	used := map[string]bool{}
	for i, tc := range file.Tests {
		if tc.InputPath == "" {
			return nil, fmt.Errorf("%s: tests[%d] has no inputPath", path, i)
		}
		if !validStatuses[tc.HealthStatus.Status] {
			return nil, fmt.Errorf("%s: tests[%d] expects status %q, not one Argo CD knows", path, i, tc.HealthStatus.Status)
		}
		used[filepath.Clean(tc.InputPath)] = true
	}
	data, err := filepath.Glob(filepath.Join(c.dir, "testdata", "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, file := range data {
		rel, _ := filepath.Rel(c.dir, file)
		if !used[rel] {
			return nil, fmt.Errorf("%s: %s is in no test", path, rel)
		}
	}
	return file.Tests, nil
}

// readObject decodes a YAML or JSON object as Argo CD's tests do (YAML -> JSON -> map).
func readObject(path string) (map[string]any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	object := map[string]any{}
	if err := yaml.Unmarshal(raw, &object); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return object, nil
}

// matchesCheck fails when Argo CD would never apply this check's script to the object.
func matchesCheck(object map[string]any, c check) error {
	apiVersion, _ := object["apiVersion"].(string)
	kind, _ := object["kind"].(string)
	group := ""
	if slash := strings.Index(apiVersion, "/"); slash >= 0 {
		group = apiVersion[:slash]
	}
	if group != c.group || kind != c.kind {
		return errors.New("apiVersion " + apiVersion + " kind " + kind + " is not " + c.group + "/" + c.kind)
	}
	return nil
}
