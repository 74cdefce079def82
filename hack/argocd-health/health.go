package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
)

// ScriptTimeout is how long Argo CD lets one health script run.
const ScriptTimeout = time.Second

// InvalidStatusMessage is the message Argo CD gives a status it does not know.
const InvalidStatusMessage = "Lua returned an invalid health status"

// HealthStatus is what a health script returns, as Argo CD reads it.
type HealthStatus struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

var validStatuses = map[string]bool{
	"Healthy":     true,
	"Progressing": true,
	"Degraded":    true,
	"Suspended":   true,
	"Missing":     true,
	"Unknown":     true,
}

// Libraries says which Lua libraries a script gets.
type Libraries int

const (
	// Restricted is Argo CD's default for scripts from argocd-cm: package, base, table and
	// an os library with only time and date (no string, math, io or the rest of os).
	Restricted Libraries = iota
	// Open is every standard library, as for Argo CD's built-in scripts or with
	// resource.customizations.useOpenLibs.<group>_<kind>: "true".
	Open
)

func (l Libraries) String() string {
	if l == Open {
		return "open-libs"
	}
	return "restricted"
}

// Evaluate runs a health script against an object decoded from JSON or YAML and returns
// the status Argo CD would show for it.
func Evaluate(script string, object map[string]any, libs Libraries, timeout time.Duration) (HealthStatus, error) {
	state := lua.NewState(lua.Options{SkipOpenLibs: libs == Restricted})
	defer state.Close()
	if err := openBaseLibraries(state); err != nil {
		return HealthStatus{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	state.SetContext(ctx)
	state.SetGlobal("obj", toLua(state, object))
	if err := state.DoString(script); err != nil {
		// Argo CD drops the Lua stack trace of a run-time error before showing it.
		var apiErr *lua.ApiError
		if errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorRun {
			apiErr.StackTrace = ""
		}
		return HealthStatus{}, err
	}
	return readResult(state.Get(-1))
}

// openBaseLibraries opens what every script gets, whatever its Libraries setting.
func openBaseLibraries(state *lua.LState) error {
	opens := []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	}
	for _, lib := range opens {
		if err := state.CallByParam(lua.P{Fn: state.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return fmt.Errorf("opening Lua library %q: %w", lib.name, err)
		}
	}
	return openSafeOs(state)
}

// openSafeOs leaves `os` (and require("os")) with only time and date. With open libraries
// the full os table stays, as in Argo CD, which registers the safe functions over it.
func openSafeOs(state *lua.LState) error {
	existing, _ := state.GetGlobal(lua.OsLibName).(*lua.LTable)
	if err := state.CallByParam(lua.P{Fn: state.NewFunction(lua.OpenOs), Protect: true}, lua.LString(lua.OsLibName)); err != nil {
		return fmt.Errorf("opening Lua library os: %w", err)
	}
	full, ok := state.GetGlobal(lua.OsLibName).(*lua.LTable)
	if !ok {
		return errors.New("the os library did not register a table")
	}
	if existing != nil {
		return nil
	}
	safe := state.NewTable()
	for _, name := range []string{"time", "date"} {
		safe.RawSetString(name, full.RawGetString(name))
	}
	state.SetGlobal(lua.OsLibName, safe)
	loaded, ok := state.GetField(state.Get(lua.RegistryIndex), "_LOADED").(*lua.LTable)
	if !ok {
		return errors.New("package.loaded is missing")
	}
	loaded.RawSetString(lua.OsLibName, safe)
	return nil
}

// toLua converts a decoded JSON value; every JSON number arrives as a float64 (LNumber).
func toLua(state *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case json.Number:
		return lua.LString(v)
	case string:
		return lua.LString(v)
	case []any:
		list := state.CreateTable(len(v), 0)
		for _, item := range v {
			list.Append(toLua(state, item))
		}
		return list
	case map[string]any:
		table := state.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(state, item))
		}
		return table
	default:
		return lua.LNil
	}
}

// readResult turns the script's return value into a HealthStatus the way Argo CD does:
// the table goes through JSON, an unknown status becomes Unknown, nil or {} is no status.
func readResult(value lua.LValue) (HealthStatus, error) {
	switch value.Type() {
	case lua.LTNil:
		return HealthStatus{}, nil
	case lua.LTTable:
	default:
		return HealthStatus{}, fmt.Errorf("expect table output from Lua script, not %s", value.Type())
	}
	raw, err := luajson.Encode(value)
	if err != nil {
		return HealthStatus{}, fmt.Errorf("encoding the script's result: %w", err)
	}
	var status HealthStatus
	if err := json.Unmarshal(raw, &status); err != nil {
		// Argo CD gives no status for any type mismatch (an empty table encodes as []).
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return HealthStatus{}, nil
		}
		return HealthStatus{}, fmt.Errorf("reading the script's result %s: %w", raw, err)
	}
	if !validStatuses[status.Status] {
		return HealthStatus{Status: "Unknown", Message: InvalidStatusMessage}, nil
	}
	return status, nil
}
