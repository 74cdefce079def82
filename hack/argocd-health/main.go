// Command argocd-health runs Argo CD resource health checks (health.lua) the way Argo CD
// runs them: gopher-lua, the libraries Argo CD opens, objects decoded from JSON (every
// number a float), a time limit per script, and unknown statuses turned into Unknown.
//
//	argocd-health test ROOT...                     run every <group>/<kind>/health_test.yaml
//	argocd-health eval [-open-libs] [-timeout D] SCRIPT OBJECT
//	                                               print the status of one object as JSON
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "test":
		os.Exit(testCommand(os.Args[2:]))
	case "eval":
		os.Exit(evalCommand(os.Args[2:]))
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: argocd-health test ROOT... | argocd-health eval [-open-libs] [-timeout 1s] SCRIPT OBJECT")
	os.Exit(2)
}

func testCommand(roots []string) int {
	if len(roots) == 0 {
		usage()
	}
	passed, failed := 0, 0
	for _, root := range roots {
		checks, err := findChecks(root)
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 2
		}
		for _, c := range checks {
			results, err := runCheck(c)
			if err != nil {
				fmt.Fprintln(os.Stderr, "error:", err)
				return 2
			}
			for _, r := range results {
				if r.Passed() {
					passed++
					fmt.Printf("ok   %s [%s] %s: %s\n", r.Name, r.Libraries, r.Got.Status, r.Got.Message)
					continue
				}
				failed++
				if r.Err != nil {
					fmt.Printf("FAIL %s [%s] error: %v\n", r.Name, r.Libraries, r.Err)
				} else {
					fmt.Printf("FAIL %s [%s]\n     got  %s: %q\n     want %s: %q\n",
						r.Name, r.Libraries, r.Got.Status, r.Got.Message, r.Want.Status, r.Want.Message)
				}
			}
		}
	}
	fmt.Printf("argocd-health: %d cases passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

func evalCommand(args []string) int {
	flags := flag.NewFlagSet("eval", flag.ExitOnError)
	openLibs := flags.Bool("open-libs", false, "open every standard library (resource.customizations.useOpenLibs)")
	timeout := flags.Duration("timeout", ScriptTimeout, "time limit of the script")
	_ = flags.Parse(args)
	if flags.NArg() != 2 {
		usage()
	}
	script, err := os.ReadFile(flags.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 2
	}
	object, err := readObject(flags.Arg(1))
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 2
	}
	libs := Restricted
	if *openLibs {
		libs = Open
	}
	start := time.Now()
	status, err := Evaluate(string(script), object, libs, *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: the script failed after %s: %v\n", time.Since(start).Round(time.Millisecond), err)
		return 1
	}
	out, _ := json.Marshal(status)
	fmt.Println(string(out))
	return 0
}
